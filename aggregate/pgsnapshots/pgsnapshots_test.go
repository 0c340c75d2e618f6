package pgsnapshots_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/pgsnapshots"
	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/writertest"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// newStore returns a Store in a schema of the test's own, and its pool.
func newStore(t *testing.T) (*pgsnapshots.Store, *pgxpool.Pool, string) {
	t.Helper()
	url, schema := harness.NewSchema(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := pgsnapshots.New(ctx, pool, schema)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	return s, pool, schema
}

func snap(stream, schema string, version int64, state string) aggregate.Snapshot {
	return aggregate.Snapshot{StreamID: stream, Schema: schema, Version: version, EventID: "e-" + state, State: []byte(state)}
}

// load loads a snapshot and fails the test on an error.
func load(t *testing.T, s *pgsnapshots.Store, stream, schema string) (aggregate.Snapshot, bool) {
	t.Helper()
	got, ok, err := s.Load(ctx, stream, schema)
	if err != nil {
		t.Fatalf("Load(%q, %q) = %v", stream, schema, err)
	}
	return got, ok
}

func save(t *testing.T, s *pgsnapshots.Store, snaps ...aggregate.Snapshot) {
	t.Helper()
	for _, x := range snaps {
		if err := s.Save(ctx, x); err != nil {
			t.Fatalf("Save(%+v) = %v", x, err)
		}
	}
}

func TestASavedSnapshotLoadsAsItWasSaved(t *testing.T) {
	s, pool, schema := newStore(t)
	if _, ok := load(t, s, "Order-1", "order-v1"); ok {
		t.Error("Load of a stream without a snapshot = true, want false")
	}
	want := aggregate.Snapshot{StreamID: "Order-1", Schema: "order-v1", Version: 120,
		EventID: "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a", State: []byte("{\"ID\":\"1\",\"Items\":[]}\x00\xff")}
	save(t, s, want)
	got, ok := load(t, s, "Order-1", "order-v1")
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("Load = %v (-want +got):\n%s", ok, diff)
	}
	// New again, as a second process starting would: the table stays.
	again, err := pgsnapshots.New(ctx, pool, schema)
	if err != nil {
		t.Fatalf("New on an existing table = %v", err)
	}
	if got, ok := load(t, again, "Order-1", "order-v1"); !ok || got.Version != 120 {
		t.Errorf("Load after a second New = %+v, %v, want the snapshot at 120", got, ok)
	}
}

func TestTheLatestSnapshotWins(t *testing.T) {
	s, _, _ := newStore(t)
	save(t, s, snap("Order-1", "order-v1", 100, "a"), snap("Order-1", "order-v1", 300, "b"), snap("Order-1", "order-v1", 200, "c"))
	if got, _ := load(t, s, "Order-1", "order-v1"); got.Version != 300 || string(got.State) != "b" {
		t.Errorf("after saves at 100, 300 and 200, Load = %+v, want the one at 300", got)
	}
	save(t, s, snap("Order-1", "order-v1", 300, "d"))
	if got, _ := load(t, s, "Order-1", "order-v1"); string(got.State) != "d" {
		t.Errorf("after a second save at 300, Load = %+v, want it replaced", got)
	}
}

func TestSchemasAndStreamsAreKeptApart(t *testing.T) {
	s, _, _ := newStore(t)
	save(t, s, snap("Order-1", "order-v1", 500, "old fold"), snap("Order-1", "order-v2", 100, "new fold"), snap("Order-2", "order-v2", 7, "other"))
	for _, tt := range []struct {
		stream, schema string
		want           string
	}{
		{"Order-1", "order-v1", "old fold"},
		{"Order-1", "order-v2", "new fold"},
		{"Order-2", "order-v2", "other"},
	} {
		if got, ok := load(t, s, tt.stream, tt.schema); !ok || string(got.State) != tt.want || got.Schema != tt.schema || got.StreamID != tt.stream {
			t.Errorf("Load(%q, %q) = %+v, %v, want %q", tt.stream, tt.schema, got, ok, tt.want)
		}
	}
	if _, ok := load(t, s, "Order-2", "order-v1"); ok {
		t.Error("Load(Order-2, order-v1) = true, want false: only order-v2 was saved for it")
	}
}

func TestDropAndDeleteRemoveSnapshots(t *testing.T) {
	s, _, _ := newStore(t)
	save(t, s, snap("Order-1", "order-v1", 100, "a"), snap("Order-2", "order-v1", 100, "b"), snap("Order-1", "order-v2", 100, "c"))

	if err := s.Drop(ctx, snap("Order-1", "order-v1", 99, "")); err != nil {
		t.Fatal(err)
	}
	if _, ok := load(t, s, "Order-1", "order-v1"); !ok {
		t.Error("Drop of version 99 removed the snapshot at 100, want it kept: it was saved after the one dropped")
	}
	if err := s.Drop(ctx, snap("Order-1", "order-v1", 100, "")); err != nil {
		t.Fatal(err)
	}
	if _, ok := load(t, s, "Order-1", "order-v1"); ok {
		t.Error("Drop of version 100 kept the snapshot at 100")
	}

	n, err := s.Delete(ctx, "order-v1")
	if err != nil || n != 1 {
		t.Errorf("Delete(order-v1) = %d, %v, want 1 removed", n, err)
	}
	if _, ok := load(t, s, "Order-2", "order-v1"); ok {
		t.Error("an order-v1 snapshot is left after Delete(order-v1)")
	}
	if _, ok := load(t, s, "Order-1", "order-v2"); !ok {
		t.Error("Delete(order-v1) removed an order-v2 snapshot")
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := load(t, s, "Order-1", "order-v2"); ok {
		t.Error("a snapshot is left after DeleteAll")
	}
}

// Through a real writer: orders decide on snapshots kept in PostgreSQL,
// and an erasure after a snapshot is seen as a full replay sees it.
func TestOrdersDecideOnSnapshotsInPostgreSQLAsOnTheirWholeStreams(t *testing.T) {
	w := writertest.Start(t, httpapi.Options{})
	c, err := client.New(w.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgsnapshots.New(ctx, w.Store.Pool(), w.Store.Schema())
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := aggregate.NewSnapshotter(s, "order-v1", aggregate.SnapshotOptions{Every: 5})
	if err != nil {
		t.Fatal(err)
	}
	command := func(decide func(orders.Order, time.Time) ([]client.Event, error)) orders.Order {
		t.Helper()
		var seen orders.Order
		_, err := aggregate.Handle(ctx, c, orders.StreamID("a1b2c3d4"), orders.Order{ID: "a1b2c3d4"}, orders.Evolve,
			func(o orders.Order) ([]client.Event, error) { seen = o; return decide(o, time.Now()) },
			aggregate.Options{Snapshots: snaps})
		if err != nil {
			t.Fatal(err)
		}
		snaps.Wait()
		return seen
	}
	whole := func() orders.Order {
		t.Helper()
		o, err := orders.Load(ctx, c, "a1b2c3d4")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	command(func(o orders.Order, at time.Time) ([]client.Event, error) { return o.Create("user123", at) })
	for range 8 {
		command(func(o orders.Order, at time.Time) ([]client.Event, error) {
			return o.AddItem("widget-x", 1, "15.99", at)
		})
	}
	command(func(o orders.Order, at time.Time) ([]client.Event, error) { return o.Ship("1 Main St", at) })
	nothing := func(orders.Order, time.Time) ([]client.Event, error) { return nil, nil }
	command(nothing) // loads 10 events: snapshot at 10
	got := command(nothing)
	if diff := cmp.Diff(whole(), got); diff != "" {
		t.Errorf("the order decided on with snapshots (-whole stream +snapshot):\n%s", diff)
	}
	if st := snaps.Stats(); st.Used == 0 || st.Saved < 2 {
		t.Errorf("Stats = %+v, want snapshots saved and used", st)
	}

	if _, err := c.EraseDataSubject(ctx, "user123"); err != nil {
		t.Fatal(err)
	}
	got = command(nothing)
	if got.ShippingAddress != "[erased]" {
		t.Errorf("after the erasure, the order decided on has the address %q, want [erased]", got.ShippingAddress)
	}
	if diff := cmp.Diff(whole(), got); diff != "" {
		t.Errorf("the order decided on after an erasure (-whole stream +snapshot):\n%s", diff)
	}
	held, ok, err := s.Load(ctx, orders.StreamID("a1b2c3d4"), "order-v1")
	if err != nil || !ok || held.Version != 11 {
		t.Errorf("snapshot after the erasure = version %d, %v, %v; want one at 11, the erasure's, replacing the one with the address", held.Version, ok, err)
	}
}
