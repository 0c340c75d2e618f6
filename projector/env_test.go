package projector_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/personal"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/relay"
	"github.com/strata-events/strata/projection"
	"github.com/strata-events/strata/projector"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// env is a store with the Order schemas and the system ones in its
// embedded registry (as writer schemas apply registers them), a relay
// publishing it to a Kafka namespace of the test's own, and the settings
// a projector needs to read it into a read-model schema of its own.
type env struct {
	t           *testing.T
	url         string
	storeSchema string
	schema      string // the read-model schema
	store       *postgres.Store
	catalog     *registry.Catalog
	keyFile     string // the master key file, STRATA_MASTER_KEY_FILE
	kafka       kafka.Config
	group       string
	db          *pgxpool.Pool // search_path: the read-model schema
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, group: harness.UniqueName("g") + "."}
	e.url, e.storeSchema = harness.NewSchema(t)
	store, err := postgres.Open(ctx, e.url, postgres.Options{Schema: e.storeSchema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	e.store = store
	if _, err := store.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(postgres.NewRegistryStore(store), registry.Options{})
	files, err := registry.ReadSchemaDir("../schemas")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(ctx, registry.WithSystemSchemas(files), false); err != nil {
		t.Fatal(err)
	}
	e.keyFile = filepath.Join(t.TempDir(), "master.key")
	if err := personal.WriteMasterKeyFile(e.keyFile); err != nil {
		t.Fatal(err)
	}
	cipher, err := postgres.OpenKeys(store, e.keyFile, personal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.catalog = registry.NewCatalog(reg, registry.CatalogOptions{Personal: cipher})
	t.Cleanup(e.catalog.Close)
	if err := e.catalog.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.kafka = kafka.Config{Brokers: harness.KafkaBrokers(t), TopicPrefix: harness.UniqueName("p") + ".", Partitions: 4,
		StoreName: harness.UniqueName("store")}
	_, e.schema = harness.NewSchema(t)
	e.db = e.pool(e.schema)
	t.Cleanup(func() {
		e.db.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{e.schema + "_build_order_summary"}.Sanitize()+" CASCADE")
	})
	return e
}

// pool opens a pool whose search_path is schema.
func (e *env) pool(schema string) *pgxpool.Pool {
	e.t.Helper()
	cfg, err := pgxpool.ParseConfig(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	return pool
}

// getenv is the projector's environment.
func (e *env) getenv(extra ...string) func(string) string {
	vars := e.environ(extra...)
	return func(k string) string {
		for _, kv := range slices.Backward(vars) { // the last one wins
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
}

// environ is the projector's environment as KEY=value; extra ones win.
func (e *env) environ(extra ...string) []string {
	return append([]string{
		"STRATA_DATABASE_URL=" + e.url,
		"STRATA_DATABASE_SCHEMA=" + e.storeSchema,
		"STRATA_MASTER_KEY_FILE=" + e.keyFile,
		"STRATA_READMODEL_SCHEMA=" + e.schema,
		"STRATA_KAFKA_BROKERS=" + strings.Join(e.kafka.Brokers, ","),
		"STRATA_TOPIC_PREFIX=" + e.kafka.TopicPrefix,
		"STRATA_TOPIC_PARTITIONS=4",
		"STRATA_GROUP_PREFIX=" + e.group,
		"STRATA_PROJECTIONS_DIR=../projections",
		"STRATA_HTTP_ADDR=127.0.0.1:0",
		"STRATA_LOG_LEVEL=warn",
	}, extra...)
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
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// cli runs a projector command in this process and returns its output.
func (e *env) cli(args ...string) (stdout, stderr string, err error) {
	var out, errOut strings.Builder
	err = projector.Run(ctx, args, e.getenv(), &out, &errOut, orders.SummaryProjection())
	return out.String(), errOut.String(), err
}

// order appends the events of one order: created, items added, and
// shipped if ship.
func (e *env) order(id string, items int, ship bool) {
	e.t.Helper()
	if err := e.appendOrder(id, items, ship); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) appendOrder(id string, items int, ship bool) error {
	var events []eventstore.EventData
	add := func(typ, data string) error {
		var meta eventstore.Metadata
		if typ == "OrderShipped" {
			meta.DataSubject = "c-" + id // the customer: its address is personal data
		}
		fp, bin, err := e.catalog.Encode(ctx, typ, []byte(data), &meta)
		events = append(events, eventstore.EventData{Type: typ, Schema: fp, Data: bin, Metadata: meta})
		return err
	}
	err := add("OrderCreated", fmt.Sprintf(`{"orderId":%q,"customerId":"c-%s","timestamp":"2026-01-02T03:04:05Z"}`, id, id))
	for i := range items {
		err = errors.Join(err, add("OrderItemAdded",
			fmt.Sprintf(`{"orderId":%q,"itemId":"item-%d","quantity":%d,"price":"%d.99","timestamp":"2026-01-02T03:04:06Z","currency":"EUR"}`, id, i%3, i+1, i)))
	}
	if ship {
		err = errors.Join(err, add("OrderShipped", fmt.Sprintf(`{"orderId":%q,"shippingAddress":"%d Harbour Road","timestamp":"2026-01-03T00:00:00Z"}`, id, len(id))))
	}
	if err != nil {
		return fmt.Errorf("encode order %s: %w", id, err)
	}
	if _, err := e.store.Append(ctx, eventstore.MustParseStreamID("Order-"+id), eventstore.Any, events); err != nil {
		return fmt.Errorf("append order %s: %w", id, err)
	}
	return nil
}

// load appends orders named prefix0, prefix1, ... with pause between
// them until stop is called, which returns how many it appended and
// fails the test if an append failed.
func (e *env) load(prefix string, pause time.Duration) (stop func() int) {
	quit, done := make(chan struct{}), make(chan struct{})
	var n int
	var err error
	go func() {
		defer close(done)
		for ; err == nil; n++ {
			select {
			case <-quit:
				return
			case <-time.After(pause):
			}
			err = e.appendOrder(fmt.Sprint(prefix, n), n%5, n%2 == 0)
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { close(quit); <-done })
		if err != nil {
			e.t.Fatalf("load: %v", err)
		}
		return n
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

// The tables of the shipped projections, and an order for their rows.
var readModelTables = map[string]string{
	"order_summary":       "order_id",
	"order_summary_items": "order_id, item_id",
	"shipped_items":       "order_id, item_id",
}

// replay applies every Order event of the store, in store order, to the
// shipped projections in a fresh schema of their own, straight from the
// store and without Kafka: the read models as they must be. It returns
// that schema.
func (e *env) replay() string {
	e.t.Helper()
	_, schema := harness.NewSchema(e.t)
	pool := e.pool(schema)
	sqls, err := projection.LoadDir("../projections")
	if err != nil {
		e.t.Fatal(err)
	}
	projections := []*projection.Projection{orders.SummaryProjection()}
	for _, sp := range sqls {
		projections = append(projections, sp.Projection())
	}
	var events []projection.Event
	var cursor eventstore.Cursor
	for {
		page, err := e.store.ReadCategory(ctx, "Order", cursor, eventstore.MaxReadLimit)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range page.Events {
			events = append(events, e.decode(ev))
		}
		if len(page.Events) == 0 {
			break
		}
		cursor = page.Next
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, p := range projections {
			if _, err := tx.Exec(ctx, p.Setup); err != nil {
				return err
			}
			if err := p.Apply(ctx, tx, events); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("replay the store: %v", err)
	}
	return schema
}

func (e *env) decode(ev eventstore.RecordedEvent) projection.Event {
	e.t.Helper()
	id, err := e.catalog.SchemaID(ctx, ev.Schema)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := e.catalog.DecodeWire(ctx, id, ev.Data, ev.Type)
	if err != nil {
		e.t.Fatal(err)
	}
	return projection.Event{
		ID: ev.ID.String(), StreamID: ev.StreamID.String(), Category: ev.StreamID.Category(), Version: ev.Version,
		Type: ev.Type, GlobalPosition: ev.GlobalPosition, RecordedAt: ev.RecordedAt, Data: v.(map[string]any), SchemaID: id,
	}
}

// tableRows returns the rows of table in schema as text, in key order.
func (e *env) tableRows(schema, table string) []string {
	e.t.Helper()
	rows, err := e.db.Query(ctx, fmt.Sprintf("SELECT t::text FROM %s t ORDER BY %s",
		pgx.Identifier{schema, table}.Sanitize(), readModelTables[table]))
	if err != nil {
		e.t.Fatalf("read %s.%s: %v", schema, table, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// readModelsEqual reports whether the read models of schema a and b hold
// the same rows, and a difference if not.
func (e *env) readModelsEqual(a, b string) (bool, string) {
	e.t.Helper()
	for _, table := range slices.Sorted(func(yield func(string) bool) {
		for t := range readModelTables {
			if !yield(t) {
				return
			}
		}
	}) {
		ra, rb := e.tableRows(a, table), e.tableRows(b, table)
		if !slices.Equal(ra, rb) {
			return false, fmt.Sprintf("%s: %d rows against %d; first difference %s", table, len(ra), len(rb), firstDiff(ra, rb))
		}
	}
	return true, ""
}

func firstDiff(a, b []string) string {
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("%q ≠ %q", x, y)
		}
	}
	return "none"
}

// waitFor polls cond until it holds or the time is up.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// buildProjector builds bin/projector into a temporary directory, once
// per test binary.
var buildProjector = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strata-projector-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "projector")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/projector").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is a projector run as a process of its own.
type process struct {
	cmd  *exec.Cmd
	addr string // of its read API
	done chan error
	logs *strings.Builder
	mu   *sync.Mutex
}

var listening = regexp.MustCompile(`read API on http://(\S+)`)

// startProcess starts `projector run` and waits until it serves.
func (e *env) startProcess(extra ...string) *process {
	e.t.Helper()
	bin, err := buildProjector()
	if err != nil {
		e.t.Fatal(err)
	}
	// A short session timeout: the group moves a killed worker's
	// partitions on within a second.
	cmd := exec.Command(bin, "run", "--session-timeout", "1s")
	cmd.Env = append(os.Environ(), e.environ(extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1), logs: &strings.Builder{}, mu: &sync.Mutex{}}
	cmd.Stderr = lockedWriter{p.mu, p.logs}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	e.t.Cleanup(func() { p.kill() })
	select {
	case p.addr = <-addr:
		return p
	case err := <-p.done:
		e.t.Fatalf("projector exited before serving: %v\n%s", err, p.stderr())
	case <-time.After(30 * time.Second):
		e.t.Fatalf("projector did not serve within 30s\n%s", p.stderr())
	}
	return nil
}

func (p *process) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	p.cmd.Process.Kill() // ErrProcessDone when it has exited
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
