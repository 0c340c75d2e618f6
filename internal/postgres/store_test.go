package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/storetest"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// newStore returns a migrated store in a schema of its own.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	url, schema := harness.NewSchema(t)
	opts.Schema = schema
	s, err := Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx, MigrateOptions{}); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return newStore(t, Options{}) })
}

// With slices of two rows, every read crosses slice boundaries.
func TestConformanceWithTinySlices(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return newStore(t, Options{SliceSize: 2}) })
}

// begin opens a transaction that the test commits or rolls back itself.
func begin(t *testing.T, s *Store) pgx.Tx {
	t.Helper()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	return tx
}

func appendInTx(t *testing.T, tx pgx.Tx, stream string, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := appendIn(ctx, tx, eventstore.MustParseStreamID(stream), eventstore.Any, false, eventstore.AssignIDs(events))
	if err != nil {
		t.Fatalf("append to %s in a transaction: %v", stream, err)
	}
	return res
}

func readIDs(t *testing.T, s *Store, category string, after eventstore.Cursor) ([]string, eventstore.Cursor) {
	t.Helper()
	events, next := storetest.ReadAllEvents(t, s, category, after, 10)
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
	}
	return out, next
}

// The bug that reading by "position > last" has: an event that takes a
// lower position but commits later must still be read, after the cursor
// has moved past its position.
func TestLateCommitIsReadAfterTheCursorPassedItsPosition(t *testing.T) {
	for _, category := range []string{"", "Order"} {
		t.Run("reading "+readName(category), func(t *testing.T) {
			s := newStore(t, Options{})
			slow := begin(t, s)
			early := appendInTx(t, slow, "Order-slow", storetest.Event("E", "slow"))
			fast := storetest.MustAppend(t, s, "Order-fast", eventstore.Any, storetest.Event("E", "fast"))
			if early.Events[0].GlobalPosition >= fast.Events[0].GlobalPosition {
				t.Fatalf("positions %d, %d: the slow event should have the lower one", early.Events[0].GlobalPosition, fast.Events[0].GlobalPosition)
			}
			got, cursor := readIDs(t, s, category, "")
			if fmt.Sprint(got) != "[Order-fast@1]" {
				t.Fatalf("before the slow commit read %v, want [Order-fast@1]", got)
			}
			if err := slow.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ = readIDs(t, s, category, cursor)
			if fmt.Sprint(got) != "[Order-slow@1]" {
				t.Errorf("after the slow commit read %v, want [Order-slow@1]", got)
			}
		})
	}
}

func TestLongTransactionDelaysOnlyItsOwnEvents(t *testing.T) {
	s := newStore(t, Options{SliceSize: 3})
	long := begin(t, s)
	appendInTx(t, long, "Order-long", storetest.Events(2, "long")...)
	_, cursor := readIDs(t, s, "", "")
	for i := 0; i < 5; i++ {
		storetest.MustAppend(t, s, fmt.Sprintf("Order-%d", i), eventstore.Any, storetest.Event("E", "x"))
	}
	got, cursor := readIDs(t, s, "", cursor)
	if len(got) != 5 {
		t.Fatalf("with a long transaction open, read %v, want the 5 events committed since", got)
	}
	aborted := begin(t, s)
	appendInTx(t, aborted, "Order-aborted", storetest.Event("E", "never"))
	if err := aborted.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = readIDs(t, s, "", cursor)
	if fmt.Sprint(got) != "[Order-long@1 Order-long@2]" {
		t.Errorf("after the long commit read %v, want [Order-long@1 Order-long@2] and nothing aborted", got)
	}
}

func TestATransactionLargerThanASliceIsReadWhole(t *testing.T) {
	s := newStore(t, Options{SliceSize: 10})
	storetest.MustAppend(t, s, "Order-a", eventstore.NoStream, storetest.Events(3, "a")...)
	storetest.MustAppend(t, s, "Order-big", eventstore.NoStream, storetest.Events(25, "big")...)
	storetest.MustAppend(t, s, "Order-b", eventstore.NoStream, storetest.Events(3, "b")...)
	for _, limit := range []int{1, 7, 100} {
		events, _ := storetest.ReadAllEvents(t, s, "", "", limit)
		if len(events) != 31 {
			t.Fatalf("pages of %d: read %d events, want 31", limit, len(events))
		}
		for i := 1; i < len(events); i++ {
			if events[i].GlobalPosition <= events[i-1].GlobalPosition {
				t.Errorf("pages of %d: position %d after %d; committed in order, they should read in order", limit, events[i].GlobalPosition, events[i-1].GlobalPosition)
			}
		}
	}
}

func TestReadingAStreamOfAThousandEvents(t *testing.T) {
	s := newStore(t, Options{})
	storetest.MustAppend(t, s, "Order-big", eventstore.NoStream, storetest.Events(1000, "e")...)
	page, err := s.ReadStream(ctx, eventstore.MustParseStreamID("Order-big"), eventstore.StreamQuery{Limit: 1000})
	if err != nil || len(page.Events) != 1000 || page.Next != 1001 {
		t.Fatalf("ReadStream = %d events, next %d, %v; want 1000, 1001", len(page.Events), page.Next, err)
	}
}

func TestMigrate(t *testing.T) {
	t.Run("a new schema is migrated, then migrating again does nothing", func(t *testing.T) {
		url, schema := harness.NewSchema(t)
		s, err := Open(ctx, url, Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Check(ctx); !errors.Is(err, ErrNotMigrated) {
			t.Errorf("Check before Migrate = %v, want ErrNotMigrated", err)
		}
		applied, err := s.Migrate(ctx, MigrateOptions{})
		if err != nil || len(applied) == 0 {
			t.Fatalf("first Migrate = %v, %v; want migrations applied", applied, err)
		}
		applied, err = s.Migrate(ctx, MigrateOptions{})
		if err != nil || len(applied) != 0 {
			t.Errorf("second Migrate = %v, %v; want nothing applied", applied, err)
		}
		if err := s.Check(ctx); err != nil {
			t.Errorf("Check after Migrate = %v", err)
		}
	})
	t.Run("concurrent migrations apply each migration once", func(t *testing.T) {
		url, schema := harness.NewSchema(t)
		errs := make(chan error, 6)
		total := make(chan int, 6)
		for i := 0; i < 6; i++ {
			go func() {
				s, err := Open(ctx, url, Options{Schema: schema})
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				applied, err := s.Migrate(ctx, MigrateOptions{})
				errs <- err
				total <- len(applied)
			}()
		}
		n := 0
		for i := 0; i < 6; i++ {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Migrate: %v", err)
				continue
			}
			n += <-total
		}
		ms, _ := migrations()
		if n != len(ms) {
			t.Errorf("concurrent migrations applied %d in all, want %d", n, len(ms))
		}
	})
	t.Run("the schema is named by the option", func(t *testing.T) {
		s := newStore(t, Options{})
		var n int
		err := s.pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('events', 'store_meta', 'schema_migrations')", s.schema).Scan(&n)
		if err != nil || n != 3 {
			t.Errorf("tables in schema %s: %d, %v; want events, store_meta and schema_migrations", s.schema, n, err)
		}
	})
}

// A logical dump restored into another cluster carries tx ids that the new
// server has not issued: the store must refuse it until re-baselined.
func TestLogicalRestoreIsDetectedAndRebaselined(t *testing.T) {
	src := newStore(t, Options{})
	storetest.MustAppend(t, src, "Order-1", eventstore.NoStream, storetest.Events(3, "before")...)
	// Consume transaction ids, so the source is well ahead of a new cluster.
	for i := 0; i < 3000; i++ {
		if _, err := src.pool.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
			t.Fatal(err)
		}
	}
	storetest.MustAppend(t, src, "Order-1", 3, storetest.Event("E", "last"))
	oldPage, err := src.ReadAll(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}

	dst, err := harness.StartPostgres(ctx, harness.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Stop()
	bin, _ := harness.PostgresBinDir()
	dump, err := runCommand(ctx, bin+"/pg_dump", nil, "--no-owner", "-n", src.schema, harness.PostgresURL(t))
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if _, err := runCommand(ctx, bin+"/psql", dump, "-v", "ON_ERROR_STOP=1", "-q", dst.URL); err != nil {
		t.Fatalf("restore: %v", err)
	}

	restored, err := Open(ctx, dst.URL, Options{Schema: src.schema})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := restored.Check(ctx); !errors.Is(err, ErrTxIDsAhead) {
		t.Fatalf("Check after restore = %v, want ErrTxIDsAhead", err)
	}
	if _, err := restored.Migrate(ctx, MigrateOptions{}); !errors.Is(err, ErrTxIDsAhead) {
		t.Fatalf("Migrate after restore = %v, want ErrTxIDsAhead", err)
	}
	if _, err := restored.Migrate(ctx, MigrateOptions{Rebaseline: true}); err != nil {
		t.Fatalf("Migrate --rebaseline = %v", err)
	}
	if _, err := restored.ReadAll(ctx, oldPage.Next, 10); eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest {
		t.Errorf("reading with a cursor from before the re-baseline = %v, want invalid_position", err)
	}
	storetest.MustAppend(t, restored, "Order-1", 4, storetest.Event("E", "after"))
	got, _ := readIDs(t, restored, "", "")
	want := "[Order-1@1 Order-1@2 Order-1@3 Order-1@4 Order-1@5]"
	if fmt.Sprint(got) != want {
		t.Errorf("after the re-baseline read %v, want %s", got, want)
	}
}

func TestThePoolCollectorReportsThePool(t *testing.T) {
	s := newStore(t, Options{MaxConns: 7})
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if got["strata_db_pool_max_connections"] != 7 || got["strata_db_pool_acquires_total"] < 1 || got["strata_db_pool_connections"] < 1 {
		t.Errorf("pool metrics = %v, want max 7, at least one acquisition and one connection", got)
	}
}

// Reading a page must cost about a slice of rows, wherever the cursor is in
// a large backlog: plans that walked the position index from the start of
// a slice, or fetched the whole range behind the cursor to sort it, made a
// catch-up read quadratic. PostgreSQL's own count of the rows the reading
// transaction fetched tells.
func TestAPageCostsASliceNotTheBacklog(t *testing.T) {
	s := newStore(t, Options{SliceSize: 500})
	for i := 0; i < 200; i++ {
		storetest.MustAppend(t, s, fmt.Sprintf("Order-%d", i), eventstore.NoStream, storetest.Events(100, "e")...)
	}
	fetched := func(tx pgx.Tx) int64 {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(idx_tup_fetch + seq_tup_read), 0) FROM pg_stat_xact_user_tables
			WHERE schemaname = $1 AND relname = 'events'`, s.schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, category := range []string{"", "Order"} {
		tx := begin(t, s)
		// Prepared statements settle on generic plans, in which the
		// planner cannot see how wide the range behind the cursor is.
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			t.Fatal(err)
		}
		var now string
		if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&now); err != nil {
			t.Fatal(err)
		}
		b, _ := parseSnapshot(now)
		c := cursor{epoch: s.epoch.Load(), category: category, a: origin, b: b}
		read := func(n, limit int) {
			for i := 0; i < n; i++ {
				events, next, err := s.readCursor(ctx, tx, c, limit)
				if err != nil || len(events) != limit {
					t.Fatalf("read %d events, %v", len(events), err)
				}
				c = next
			}
		}
		read(10, 1000) // well into the backlog of 20,000
		before := fetched(tx)
		read(10, 100)
		// Each page of 100 reads about a slice (500 rows) twice: to
		// find its end and to fetch it.
		if perPage := (fetched(tx) - before) / 10; perPage > 2500 {
			t.Errorf("reading %s: %d rows fetched per page of 100, 10,000 events into a backlog of 20,000; want about a slice's (500)",
				readName(category), perPage)
		} else {
			t.Logf("reading %s: %d rows fetched per page of 100", readName(category), perPage)
		}
		tx.Rollback(ctx)
	}
}

// countingQuerier counts the statements run through it.
type countingQuerier struct {
	querier
	queries int
}

func (q *countingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	q.queries++
	return q.querier.Query(ctx, sql, args...)
}

// A page that ends where its slice ends learns so from the statement that
// read it: reading a backlog page by page takes one statement a page, not
// a second one that finds the slice empty.
func TestAPageToTheEndOfItsSliceTakesOneStatement(t *testing.T) {
	s := newStore(t, Options{SliceSize: 100})
	for i := 0; i < 10; i++ {
		storetest.MustAppend(t, s, fmt.Sprintf("Order-%d", i), eventstore.NoStream, storetest.Events(100, "e")...)
	}
	q := &countingQuerier{querier: s.pool}
	c, err := decodeCursor("", "", s.epoch.Load())
	if err != nil {
		t.Fatal(err)
	}
	var read []eventstore.RecordedEvent
	for i := 0; i < 10; i++ {
		before := q.queries
		events, next, err := s.readCursor(ctx, q, c, 100)
		if err != nil || len(events) != 100 {
			t.Fatalf("page %d: read %d events, %v", i, len(events), err)
		}
		// The first page also moves the cursor to the head: a statement
		// of its own that finds nothing.
		if want := 1 + btoi(i == 0); q.queries-before != want {
			t.Errorf("page %d took %d statements, want %d", i, q.queries-before, want)
		}
		read, c = append(read, events...), next
	}
	for i, e := range read {
		if e.GlobalPosition != int64(i+1) {
			t.Fatalf("event %d has position %d", i, e.GlobalPosition)
		}
	}
	if events, _, err := s.readCursor(ctx, q, c, 100); err != nil || len(events) != 0 {
		t.Fatalf("after the backlog: %d events, %v", len(events), err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
