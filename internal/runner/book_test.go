package runner

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/projection"
)

// The claim is the compare-and-set that makes a batch apply exactly once:
// these tests hold its semantics against a real PostgreSQL.

const bookTopic = "events.Order"

// bookFixture is a book in a fresh schema in which projection "p" serves
// generation 1, running, with partition 0's offset stored at 10 (10
// applied) and nothing stored for partition 1.
type bookFixture struct {
	t  *testing.T
	b  book
	db *pgxpool.Pool
}

func newBookFixture(t *testing.T) *bookFixture {
	t.Helper()
	ctx := context.Background()
	url, schema := harness.NewSchema(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	f := &bookFixture{t: t, b: newBook(schema), db: db}
	if err := f.b.ensure(ctx, db); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	if _, err := f.b.setup(ctx, db, &projection.Projection{Name: "p", Categories: []string{"Order"}}); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if err := f.claim(liveTarget(1), 0, -1, 10, 10); err != nil {
		t.Fatalf("first claim of partition 0 = %v, want nil", err)
	}
	return f
}

func liveTarget(generation int64) target { return target{projection: "p", generation: generation} }

func buildTarget(generation int64) target {
	return target{projection: "p", generation: generation, build: true}
}

// claim runs a claim in a transaction of its own, which commits if the
// claim succeeds.
func (f *bookFixture) claim(t target, partition int32, from, to, applied int64) error {
	ctx := context.Background()
	return pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
		return f.b.claim(ctx, tx, t, bookTopic, partition, from, to, applied)
	})
}

func (f *bookFixture) exec(sql string) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), sql); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// claimWithin is claim, failing if it waits for a lock longer than wait.
func (f *bookFixture) claimWithin(t target, partition int32, from, to, applied int64, wait time.Duration) error {
	ctx := context.Background()
	return pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", wait.Milliseconds())); err != nil {
			return err
		}
		return f.b.claim(ctx, tx, t, bookTopic, partition, from, to, applied)
	})
}

// offsets returns every stored offset, one "generation/partition:
// next=N applied=M" a row.
func (f *bookFixture) offsets() []string {
	f.t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT format('%s/%s: next=%s applied=%s', generation, partition, next_offset, applied)
		FROM projection_offsets ORDER BY generation, topic, partition`)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func TestClaim(t *testing.T) {
	tests := []struct {
		name string
		// before changes the projection's row (or offsets) first.
		before            string
		target            target
		partition         int32
		from, to, applied int64
		want              error
		wantOffsets       []string
	}{
		{
			name:   "a claim from the stored offset moves it and adds what it applied",
			target: liveTarget(1), partition: 0, from: 10, to: 25, applied: 12,
			wantOffsets: []string{"1/0: next=25 applied=22"},
		},
		{
			name:   "the first claim of a partition, from -1, stores its offset",
			target: liveTarget(1), partition: 1, from: -1, to: 5, applied: 5,
			wantOffsets: []string{"1/0: next=10 applied=10", "1/1: next=5 applied=5"},
		},
		{
			name:   "a claim from a stale offset fails and changes nothing",
			before: "UPDATE projection_offsets SET next_offset = 30, applied = 30", // another worker moved it on
			target: liveTarget(1), partition: 0, from: 10, to: 20, applied: 10,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=30 applied=30"},
		},
		{
			name:   "a first claim fails once another worker has stored an offset",
			target: liveTarget(1), partition: 0, from: -1, to: 3, applied: 3,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a claim from an offset ahead of the stored one fails",
			target: liveTarget(1), partition: 0, from: 12, to: 20, applied: 8,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a live claim fails while the projection is halted",
			before: "UPDATE projections SET state = 'halted', halted_error = 'poison'",
			target: liveTarget(1), partition: 0, from: 10, to: 20, applied: 10,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a first live claim fails while the projection is halted, and stores nothing",
			before: "UPDATE projections SET state = 'halted', halted_error = 'poison'",
			target: liveTarget(1), partition: 1, from: -1, to: 20, applied: 20,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a live claim of an old generation fails once a rebuild was swapped in",
			before: "UPDATE projections SET generation = 2",
			target: liveTarget(1), partition: 0, from: 10, to: 20, applied: 10,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a first live claim of an old generation stores nothing",
			before: "UPDATE projections SET generation = 2",
			target: liveTarget(1), partition: 1, from: -1, to: 20, applied: 20,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a live claim of the generation being built fails: it does not serve yet",
			before: "UPDATE projections SET build_generation = 2",
			target: liveTarget(2), partition: 0, from: -1, to: 20, applied: 20,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a build claim fails when no rebuild is in progress",
			target: buildTarget(2), partition: 0, from: -1, to: 20, applied: 20,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a build claim fails once another rebuild restarted with the next generation",
			before: "UPDATE projections SET build_generation = 3",
			target: buildTarget(2), partition: 0, from: -1, to: 20, applied: 20,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10"},
		},
		{
			name:   "a build claim of the generation being built stores its own offsets beside the live ones",
			before: "UPDATE projections SET build_generation = 2",
			target: buildTarget(2), partition: 0, from: -1, to: 7, applied: 6,
			wantOffsets: []string{"1/0: next=10 applied=10", "2/0: next=7 applied=6"},
		},
		{
			name:   "a build claim goes on while the serving generation is halted: the swap clears the halt",
			before: "UPDATE projections SET state = 'halted', build_generation = 2",
			target: buildTarget(2), partition: 0, from: -1, to: 7, applied: 7,
			wantOffsets: []string{"1/0: next=10 applied=10", "2/0: next=7 applied=7"},
		},
		{
			name:   "a build claim from a stale offset fails like a live one",
			before: "UPDATE projections SET build_generation = 2; INSERT INTO projection_offsets (projection, generation, topic, partition, next_offset, applied) VALUES ('p', 2, 'events.Order', 0, 40, 40)",
			target: buildTarget(2), partition: 0, from: 7, to: 50, applied: 10,
			want:        errConflict,
			wantOffsets: []string{"1/0: next=10 applied=10", "2/0: next=40 applied=40"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newBookFixture(t)
			if tt.before != "" {
				f.exec(tt.before)
			}
			err := f.claim(tt.target, tt.partition, tt.from, tt.to, tt.applied)
			if !errors.Is(err, tt.want) {
				t.Errorf("claim(%+v, partition %d, %d → %d) = %v, want %v", tt.target, tt.partition, tt.from, tt.to, err, tt.want)
			}
			if d := cmp.Diff(tt.wantOffsets, f.offsets()); d != "" {
				t.Errorf("stored offsets after the claim (-want +got):\n%s", d)
			}
		})
	}
}

// TestAClaimWaitsForAConcurrentClaimOfItsPartition holds what stops a zombie:
// two workers claiming from the same offset at once, the second waits for
// the first's transaction and then compares against what it committed.
func TestAClaimWaitsForAConcurrentClaimOfItsPartition(t *testing.T) {
	for _, tt := range []struct {
		name        string
		firstCommit bool
		wantSecond  error
		wantOffsets []string
	}{
		{"the second fails when the first commits", true, errConflict, []string{"1/0: next=20 applied=20"}},
		{"the second succeeds when the first rolls back", false, nil, []string{"1/0: next=30 applied=30"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newBookFixture(t)
			ctx := context.Background()
			first, err := f.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Rollback(ctx)
			if err := f.b.claim(ctx, first, liveTarget(1), bookTopic, 0, 10, 20, 10); err != nil {
				t.Fatalf("first claim(10 → 20) = %v, want nil", err)
			}
			second := f.inBackground(func(ctx context.Context, tx pgx.Tx) error {
				return f.b.claim(ctx, tx, liveTarget(1), bookTopic, 0, 10, 30, 20)
			})
			second.waitUntilBlocked(f)
			if tt.firstCommit {
				err = first.Commit(ctx)
			} else {
				err = first.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := second.wait(t); !errors.Is(err, tt.wantSecond) {
				t.Errorf("second claim(10 → 30) = %v, want %v", err, tt.wantSecond)
			}
			if d := cmp.Diff(tt.wantOffsets, f.offsets()); d != "" {
				t.Errorf("stored offsets (-want +got):\n%s", d)
			}
		})
	}
}

// TestAClaimAndAChangeOfTheProjectionWaitForEachOther holds the locks of
// claimSQL: a swap, a halt or a restarted rebuild that commits while a
// claim waits for it makes the claim fail, and a swap waits for a batch
// that has claimed.
func TestAClaimAndAChangeOfTheProjectionWaitForEachOther(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before string // committed first
		change string // left open while the claim runs
		commit bool
		target target
		want   error
	}{
		{
			name:   "a live claim waiting for a swap fails once the swap commits",
			change: "UPDATE projections SET generation = 2", commit: true,
			target: liveTarget(1), want: errConflict,
		},
		{
			name:   "a live claim waiting for a halt fails once the halt commits",
			change: "UPDATE projections SET state = 'halted'", commit: true,
			target: liveTarget(1), want: errConflict,
		},
		{
			name:   "a live claim waiting for a swap that rolls back succeeds",
			change: "UPDATE projections SET generation = 2", commit: false,
			target: liveTarget(1), want: nil,
		},
		{
			name:   "a build claim waiting for a restart of the rebuild fails once the restart commits",
			before: "UPDATE projections SET build_generation = 2",
			change: "SELECT 1 FROM projections WHERE name = 'p' FOR UPDATE; UPDATE projections SET build_generation = 3", commit: true,
			target: buildTarget(2), want: errConflict,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newBookFixture(t)
			ctx := context.Background()
			if tt.before != "" {
				f.exec(tt.before)
			}
			change, err := f.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer change.Rollback(ctx)
			if _, err := change.Exec(ctx, tt.change); err != nil {
				t.Fatal(err)
			}
			from := int64(10)
			if tt.target.build {
				from = -1
			}
			claim := f.inBackground(func(ctx context.Context, tx pgx.Tx) error {
				return f.b.claim(ctx, tx, tt.target, bookTopic, 0, from, 20, 10)
			})
			claim.waitUntilBlocked(f)
			if tt.commit {
				err = change.Commit(ctx)
			} else {
				err = change.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := claim.wait(t); !errors.Is(err, tt.want) {
				t.Errorf("claim(%+v, %d → 20) after %q = %v, want %v", tt.target, from, tt.change, err, tt.want)
			}
		})
	}

	t.Run("a swap catching up holds back the live claims and lets the build's through", func(t *testing.T) {
		f := newBookFixture(t)
		ctx := context.Background()
		f.exec("UPDATE projections SET build_generation = 2")
		swap, err := f.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer swap.Rollback(ctx)
		if _, err := swap.Exec(ctx, "SELECT 1 FROM projections WHERE name = 'p' FOR NO KEY UPDATE"); err != nil {
			t.Fatal(err)
		}
		liveClaim := f.inBackground(func(ctx context.Context, tx pgx.Tx) error {
			return f.b.claim(ctx, tx, liveTarget(1), bookTopic, 0, 10, 20, 10)
		})
		liveClaim.waitUntilBlocked(f)
		if err := f.claimWithin(buildTarget(2), 0, -1, 25, 25, 5*time.Second); err != nil {
			t.Fatalf("a build claim while the swap holds the row = %v, want nil", err)
		}
		if _, err := swap.Exec(ctx, "UPDATE projections SET generation = 2, build_generation = NULL"); err != nil {
			t.Fatal(err)
		}
		if err := swap.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := liveClaim.wait(t); !errors.Is(err, errConflict) {
			t.Errorf("the live claim held back by the swap = %v, want errConflict", err)
		}
		if d := cmp.Diff([]string{"1/0: next=10 applied=10", "2/0: next=25 applied=25"}, f.offsets()); d != "" {
			t.Errorf("stored offsets (-want +got):\n%s", d)
		}
	})

	t.Run("a swap waits for a batch that has claimed", func(t *testing.T) {
		f := newBookFixture(t)
		ctx := context.Background()
		batch, err := f.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer batch.Rollback(ctx)
		if err := f.b.claim(ctx, batch, liveTarget(1), bookTopic, 0, 10, 20, 10); err != nil {
			t.Fatalf("claim(10 → 20) = %v, want nil", err)
		}
		swap := f.inBackground(func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE projections SET generation = 2 WHERE name = 'p'")
			return err
		})
		swap.waitUntilBlocked(f)
		if err := batch.Commit(ctx); err != nil {
			t.Fatalf("commit of the batch = %v, want nil", err)
		}
		if err := swap.wait(t); err != nil {
			t.Fatalf("swap = %v, want nil", err)
		}
		if d := cmp.Diff([]string{"1/0: next=20 applied=20"}, f.offsets()); d != "" {
			t.Errorf("stored offsets (-want +got):\n%s", d)
		}
		if err := f.claim(liveTarget(1), 0, 20, 30, 10); !errors.Is(err, errConflict) {
			t.Errorf("claim of generation 1 after the swap = %v, want errConflict", err)
		}
	})
}

// background is a transaction running in a goroutine on a connection of
// its own.
type background struct {
	pid  uint32
	done chan error
}

// inBackground runs fn in a transaction, committed if fn succeeds, on a
// connection of its own.
func (f *bookFixture) inBackground(fn func(context.Context, pgx.Tx) error) *background {
	f.t.Helper()
	ctx := context.Background()
	conn, err := f.db.Acquire(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	bg := &background{pid: conn.Conn().PgConn().PID(), done: make(chan error, 1)}
	go func() {
		defer conn.Release()
		bg.done <- pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return fn(ctx, tx) })
	}()
	return bg
}

// waitUntilBlocked waits until the background transaction waits for a lock.
func (bg *background) waitUntilBlocked(f *bookFixture) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		err := f.db.QueryRow(context.Background(),
			"SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1", int32(bg.pid)).Scan(&waiting)
		if err != nil {
			f.t.Fatal(err)
		}
		if waiting {
			return
		}
		select {
		case err := <-bg.done:
			f.t.Fatalf("the transaction on backend %d ended without waiting for a lock: %v", bg.pid, err)
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("backend %d never waited for a lock", bg.pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (bg *background) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-bg.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("the transaction on backend %d is still running", bg.pid)
		return fmt.Errorf("still running")
	}
}

// projectionStreamsRead runs sql under EXPLAIN ANALYZE with a generic
// plan, as pgx's prepared statements get one after five runs, in a
// transaction it rolls back, and returns how many rows its scans of
// projection_streams read.
func (f *bookFixture) projectionStreamsRead(sql string, args ...any) int {
	f.t.Helper()
	ctx := context.Background()
	tx, err := f.db.Begin(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
		f.t.Fatal(err)
	}
	var plans []map[string]any
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plans); err != nil {
		f.t.Fatalf("explain: %v", err)
	}
	var read func(node map[string]any) int
	read = func(node map[string]any) int {
		n := 0
		if node["Relation Name"] == "projection_streams" && node["Node Type"] != "ModifyTable" {
			n += int(node["Actual Rows"].(float64) * node["Actual Loops"].(float64))
		}
		children, _ := node["Plans"].([]any)
		for _, c := range children {
			n += read(c.(map[string]any))
		}
		return n
	}
	return read(plans[0]["Plan"].(map[string]any))
}

// The version guard and read-your-writes look up the streams at hand, one
// index probe each, however many streams the projection has: a plan that
// joins the projection's every stream makes each batch as slow as the read
// model is large.
func TestStreamVersionsAreLookedUpStreamByStream(t *testing.T) {
	f := newBookFixture(t)
	f.exec(`INSERT INTO projection_streams (projection, generation, stream_id, version)
		SELECT 'p', 1, 'Order-' || i, 1 FROM generate_series(1, 20000) AS i`)
	streams := []string{"Order-7", "Order-70", "Order-new"}
	if n := f.projectionStreamsRead(f.b.claimSQL(liveTarget(1)), "p", int64(1), []string{bookTopic}, []int32{0}, []int64{-1}, []int64{1}, []int64{1},
		streams, []int64{1, 1, 0}, []int64{2, 2, 1}); n > len(streams) {
		t.Errorf("checking the versions of %d streams read %d rows of projection_streams, want at most %d", len(streams), n, len(streams))
	}
	if n := f.projectionStreamsRead(appliedSQL(f.b.schema), "p", streams); n > len(streams) {
		t.Errorf("reading the applied versions of %d streams read %d rows of projection_streams, want at most %d", len(streams), n, len(streams))
	}
}

// One statement claims a poll's partitions and stores its streams'
// versions: every claim must hold, or the whole is a conflict.
func TestClaimingSeveralPartitionsAtOnceHoldsOnlyIfEveryClaimDoes(t *testing.T) {
	f := newBookFixture(t)
	ctx := context.Background()
	claimAll := func(claims []claim, streams []string, expected, versions []int64) (map[string]int64, error) {
		var stale map[string]int64
		err := pgx.BeginFunc(ctx, f.db, func(tx pgx.Tx) (err error) {
			stale, err = f.b.claimAll(ctx, tx, liveTarget(1), claims, streams, expected, versions)
			return err
		})
		return stale, err
	}
	stale, err := claimAll([]claim{{bookTopic, 0, 10, 20, 10}, {bookTopic, 1, -1, 5, 5}}, []string{"Order-a", "Order-b"}, []int64{0, 0}, []int64{3, 2})
	if err != nil || stale != nil {
		t.Fatalf("claimAll(partitions 0 and 1) = %v, %v, want no stale stream and nil", stale, err)
	}
	if diff := cmp.Diff([]string{"1/0: next=20 applied=20", "1/1: next=5 applied=5"}, f.offsets()); diff != "" {
		t.Errorf("offsets after the claims (-want +got):\n%s", diff)
	}
	for name, claims := range map[string][]claim{
		"an offset moved":         {{bookTopic, 0, 20, 30, 10}, {bookTopic, 1, 4, 6, 1}},
		"an offset already there": {{bookTopic, 0, 20, 30, 10}, {bookTopic, 1, -1, 6, 1}},
	} {
		if _, err := claimAll(claims, nil, nil, nil); !errors.Is(err, errConflict) {
			t.Errorf("claimAll with %s = %v, want errConflict", name, err)
		}
	}
	if diff := cmp.Diff([]string{"1/0: next=20 applied=20", "1/1: next=5 applied=5"}, f.offsets()); diff != "" {
		t.Errorf("offsets after the conflicts (-want +got):\n%s", diff)
	}
	stale, err = claimAll([]claim{{bookTopic, 0, 20, 30, 10}}, []string{"Order-a", "Order-b", "Order-c"}, []int64{3, 1, 0}, []int64{4, 3, 1})
	if diff := cmp.Diff(map[string]int64{"Order-b": 2}, stale); err != nil || diff != "" {
		t.Errorf("claimAll with Order-b not at the version expected = %v (stale -want +got:\n%s)", err, diff)
	}
}
