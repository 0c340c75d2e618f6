package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// env is a store with the Order schemas and the system ones (as writer
// schemas apply registers them), a relay publishing it to a Kafka
// namespace of the test's own, and a read-model schema.
type env struct {
	t         *testing.T
	url       string
	store     *postgres.Store
	catalog   *registry.Catalog
	kafka     kafka.Config
	consumers *kafka.Consumers
	schema    string // the read-model schema
	db        *pgxpool.Pool
	group     string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	url, storeSchema := harness.NewSchema(t)
	store, err := postgres.Open(ctx, url, postgres.Options{Schema: storeSchema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.NewMemStorage(), registry.Options{})
	files, err := registry.ReadSchemaDir("../../schemas")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(ctx, registry.WithSystemSchemas(files), false); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := personal.WriteMasterKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	cipher, err := postgres.OpenKeys(store, keyFile, personal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	catalog := registry.NewCatalog(reg, registry.CatalogOptions{Personal: cipher})
	t.Cleanup(catalog.Close)
	if err := catalog.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, url: url, store: store, catalog: catalog, group: harness.UniqueName("g") + "."}
	e.kafka = kafka.Config{Brokers: harness.KafkaBrokers(t), TopicPrefix: harness.UniqueName("p") + ".", Partitions: 4,
		StoreName: harness.UniqueName("store")}
	e.consumers, err = kafka.NewConsumers(e.kafka, kafka.ConsumerOptions{SessionTimeout: 6 * time.Second, MaxPollRecords: 500})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.consumers.Close)
	_, e.schema = harness.NewSchema(t)
	e.db = e.open(e.schema)
	t.Cleanup(e.db.Close)
	// Drop the build schemas a rebuild leaves behind.
	t.Cleanup(func() {
		e.db.Exec(context.Background(), fmt.Sprintf(`DO $$ DECLARE s text; BEGIN
			FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE '%s_build_%%' LOOP
				EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE'; END LOOP; END $$`, e.schema))
	})
	return e
}

// open returns a pool whose search_path is schema.
func (e *env) open(schema string) *pgxpool.Pool {
	e.t.Helper()
	pool, err := e.openPool(ctx, schema)
	if err != nil {
		e.t.Fatal(err)
	}
	return pool
}

func (e *env) openPool(ctx context.Context, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(e.url)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	return pgxpool.NewWithConfig(ctx, cfg)
}

// startRelay publishes the store until the test ends.
func (e *env) startRelay() {
	e.t.Helper()
	leases := relay.LeasesFunc(func(ctx context.Context) (relay.Lease, error) {
		return e.store.AcquireLease(ctx, "relay", 50*time.Millisecond)
	})
	r := relay.New(e.store, e.catalog, leases, func() (relay.Publisher, error) {
		return kafka.NewPublisher(e.kafka, kafka.PublisherOptions{TransactionTimeout: 5 * time.Second})
	}, relay.Options{PollInterval: 10 * time.Millisecond})
	e.run(r.Run)
}

// run runs fn until the test ends or stop is called; stop returns fn's
// result.
func (e *env) run(fn func(context.Context) error) (stop func() error) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fn(rctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

func (e *env) runner(p *projection.Projection, opts runner.Options) *runner.Runner {
	return e.runnerOn(e.db, p, opts)
}

// runnerOn is runner with a read-model pool of the test's own.
func (e *env) runnerOn(db *pgxpool.Pool, p *projection.Projection, opts runner.Options) *runner.Runner {
	opts.Schema = e.schema
	opts.GroupPrefix = e.group
	opts.Topic = e.kafka.Topic
	if opts.Backoff == 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	opts.MaxBackoff = 200 * time.Millisecond
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	if os.Getenv("RUNNER_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return runner.New(p, db, e.consumers, e.catalog, opts)
}

// order appends the events of one order: created, items added, and
// shipped if ship. It returns how many events it appended.
func (e *env) order(id string, items int, ship bool) int {
	e.t.Helper()
	n, err := e.appendOrder(id, items, ship)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// appendOrder is order for goroutines other than the test's: it returns
// its error.
func (e *env) appendOrder(id string, items int, ship bool) (int, error) {
	data := []string{fmt.Sprintf(`{"orderId":%q,"customerId":"c-%s","timestamp":"2026-01-02T03:04:05Z"}`, id, id)}
	types := []string{"OrderCreated"}
	for i := range items {
		data = append(data, fmt.Sprintf(`{"orderId":%q,"itemId":"item-%d","quantity":%d,"price":"%d.99","timestamp":"2026-01-02T03:04:06Z","currency":"EUR"}`, id, i%3, i+1, i))
		types = append(types, "OrderItemAdded")
	}
	if ship {
		data = append(data, fmt.Sprintf(`{"orderId":%q,"shippingAddress":"1 Main Street","timestamp":"2026-01-03T00:00:00Z"}`, id))
		types = append(types, "OrderShipped")
	}
	events := make([]eventstore.EventData, len(data))
	for i := range data {
		ev, err := e.encode(types[i], data[i])
		if err != nil {
			return 0, err
		}
		events[i] = ev
	}
	if _, err := e.store.Append(ctx, eventstore.MustParseStreamID("Order-"+id), eventstore.Any, events); err != nil {
		return 0, fmt.Errorf("append order %s: %w", id, err)
	}
	return len(events), nil
}

func (e *env) event(typ, data string) eventstore.EventData {
	e.t.Helper()
	ev, err := e.encode(typ, data)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// encode encodes data with the latest schema of typ.
func (e *env) encode(typ, data string) (eventstore.EventData, error) {
	var meta eventstore.Metadata
	if typ == "OrderShipped" {
		meta.DataSubject = "c-test" // its address is personal data
	}
	fp, bin, err := e.catalog.Encode(ctx, typ, []byte(data), &meta)
	if err != nil {
		return eventstore.EventData{}, fmt.Errorf("encode %s %s: %w", typ, data, err)
	}
	return eventstore.EventData{Type: typ, Schema: fp, Data: bin, Metadata: meta}, nil
}

// ledgerSetup is the table of the ledger projection: one row per event
// applied, so that applying an event twice fails on its primary key.
const ledgerSetup = `CREATE TABLE IF NOT EXISTS ledger (
	event_id  text PRIMARY KEY,
	stream_id text NOT NULL,
	version   bigint NOT NULL,
	type      text NOT NULL,
	order_id  text NOT NULL,
	UNIQUE (stream_id, version)
);`

// ledger is a projection that records every event it applies; fail, when
// set, makes the events it returns an error for fail.
func ledger(name string, fail func(projection.Event) error) *projection.Projection {
	return &projection.Projection{
		Name: name, Categories: []string{"Order"}, Setup: ledgerSetup,
		Apply: func(ctx context.Context, tx pgx.Tx, events []projection.Event) error {
			var ids, streams, types, orders []string
			var versions []int64
			for _, ev := range events {
				if fail != nil {
					if err := fail(ev); err != nil {
						return err
					}
				}
				ids, streams, types, orders = append(ids, ev.ID), append(streams, ev.StreamID), append(types, ev.Type), append(orders, ev.Text("orderId"))
				versions = append(versions, ev.Version)
			}
			_, err := tx.Exec(ctx, `INSERT INTO ledger (event_id, stream_id, version, type, order_id)
				SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])`, ids, streams, versions, types, orders)
			return err
		},
	}
}

// ledgerRows returns the ledger as "stream@version type" by event id.
func (e *env) ledgerRows(schema string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	rows, err := e.db.Query(ctx, "SELECT event_id, stream_id, version, type FROM "+pgx.Identifier{schema, "ledger"}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return out // not set up yet
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var id, stream, typ string
	var version int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &stream, &version, &typ}, func() error {
		out[id] = fmt.Sprintf("%s@%d %s", stream, version, typ)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// storedRows returns the store's Order events in the ledger's form.
func (e *env) storedRows() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	var cursor eventstore.Cursor
	for {
		page, err := e.store.ReadCategory(ctx, "Order", cursor, eventstore.MaxReadLimit)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range page.Events {
			out[ev.ID.String()] = fmt.Sprintf("%s@%d %s", ev.StreamID, ev.Version, ev.Type)
		}
		if len(page.Events) == 0 {
			return out
		}
		cursor = page.Next
	}
}

// waitFor polls cond until it holds or the time is up.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForLedger waits until the ledger in schema holds what the store
// holds, and fails with the difference if it does not in time.
func (e *env) waitForLedger(schema string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		want, got := e.storedRows(), e.ledgerRows(schema)
		missing, extra := diff(want, got)
		if len(missing) == 0 && len(extra) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the ledger does not match the store after %v: %d events missing (e.g. %v), %d extra (e.g. %v)",
				timeout, len(missing), first(missing), len(extra), first(extra))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func diff(want, got map[string]string) (missing, extra []string) {
	for id, w := range want {
		if got[id] != w {
			missing = append(missing, w)
		}
	}
	for id, g := range got {
		if want[id] != g {
			extra = append(extra, g)
		}
	}
	return missing, extra
}

func first(s []string) []string { return s[:min(3, len(s))] }

// summaryRows returns the order_summary tables of schema as text, one line
// a row, in key order.
func (e *env) summaryRows(schema string) []string {
	e.t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT format('order %s customer=%s status=%s items=%s total=%s address=%s created=%s shipped=%s version=%s',
		        order_id, coalesce(customer_id, '<NULL>'), status, item_count, total, coalesce(shipping_address, '<NULL>'),
		        coalesce(created_at::text, '<NULL>'), coalesce(shipped_at::text, '<NULL>'), version)
		 FROM %s ORDER BY order_id`,
		`SELECT format('item %s/%s quantity=%s price=%s currency=%s', order_id, item_id, quantity, price, currency)
		 FROM %s ORDER BY order_id, item_id`,
	} {
		table := "order_summary"
		if strings.Contains(q, "item_id") {
			table = "order_summary_items"
		}
		rows, err := e.db.Query(ctx, strings.Replace(q, "FROM %s", "FROM "+pgx.Identifier{schema, table}.Sanitize(), 1))
		if err != nil {
			e.t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, lines...)
	}
	return out
}

// summaryFromStore folds every Order event of the store, read from the
// store rather than from Kafka, with order_summary's Apply into a schema of
// its own, and returns that schema: the read model a runner must arrive at.
func (e *env) summaryFromStore() string {
	e.t.Helper()
	p := orders.SummaryProjection()
	var events []projection.Event
	var cursor eventstore.Cursor
	for {
		page, err := e.store.ReadCategory(ctx, "Order", cursor, eventstore.MaxReadLimit)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, ev := range page.Events {
			id, err := e.catalog.SchemaID(ctx, ev.Schema)
			if err != nil {
				e.t.Fatal(err)
			}
			data, err := e.catalog.DecodeWire(ctx, id, ev.Data, ev.Type)
			if err != nil {
				e.t.Fatalf("decode %s %s@%d: %v", ev.Type, ev.StreamID, ev.Version, err)
			}
			events = append(events, projection.Event{ID: ev.ID.String(), StreamID: ev.StreamID.String(), Category: "Order",
				Version: ev.Version, Type: ev.Type, GlobalPosition: ev.GlobalPosition, RecordedAt: ev.RecordedAt,
				Data: data.(map[string]any), SchemaID: id})
		}
		cursor = page.Next
	}
	_, schema := harness.NewSchema(e.t)
	pool := e.open(schema)
	defer pool.Close()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, p.Setup); err != nil {
			return err
		}
		return p.Apply(ctx, tx, events)
	})
	if err != nil {
		e.t.Fatalf("fold of the store's %d events: %v", len(events), err)
	}
	return schema
}
