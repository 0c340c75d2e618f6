package orders

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/projection"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// newReadModel returns a pool whose search_path is a fresh schema holding
// order_summary's tables.
func newReadModel(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url, schema := harness.NewSchema(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	p := SummaryProjection()
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for range 2 { // Setup must be idempotent
		if _, err := pool.Exec(ctx, p.Setup); err != nil {
			t.Fatalf("Setup: %v", err)
		}
	}
	return pool
}

// applyBatches applies each batch in a transaction of its own, as the
// runner does.
func applyBatches(t testing.TB, pool *pgxpool.Pool, batches ...[]projection.Event) {
	t.Helper()
	apply := SummaryProjection().Apply
	for i, b := range batches {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return apply(ctx, tx, b) }); err != nil {
			t.Fatalf("Apply(batch %d of %d events) = %v", i, len(b), err)
		}
	}
}

// rows returns both tables as text, one line per row in key order.
func rows(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT format('order %s customer=%s status=%s items=%s total=%s address=%s created=%s shipped=%s version=%s',
		        order_id, coalesce(customer_id, '<NULL>'), status, item_count, total, coalesce(shipping_address, '<NULL>'),
		        coalesce(to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), '<NULL>'),
		        coalesce(to_char(shipped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), '<NULL>'), version)
		 FROM order_summary ORDER BY order_id`,
		`SELECT format('item %s/%s quantity=%s price=%s currency=%s', order_id, item_id, quantity, price, currency)
		 FROM order_summary_items ORDER BY order_id, item_id`,
	} {
		r, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lines...)
	}
	return out
}

// events builds the events of Order streams, numbering each stream's
// versions.
type events struct {
	t        testing.TB
	versions map[string]int64
	list     []projection.Event
}

func newEvents(t testing.TB) *events { return &events{t: t, versions: map[string]int64{}} }

var at = time.Date(2023, 10, 27, 10, 0, 0, 0, time.UTC)

func (b *events) add(typ, order string, data map[string]any) *events {
	b.t.Helper()
	stream := "Order-" + order
	b.versions[stream]++
	data["orderId"] = order
	if _, ok := data["timestamp"]; !ok {
		data["timestamp"] = at.Add(time.Duration(len(b.list)) * time.Minute)
	}
	b.list = append(b.list, projection.Event{
		ID: fmt.Sprintf("e-%d", len(b.list)), StreamID: stream, Category: "Order", Type: typ,
		Version: b.versions[stream], Data: data,
	})
	return b
}

func (b *events) created(order, customer string) *events {
	return b.add(TypeOrderCreated, order, map[string]any{"customerId": customer})
}

// item adds an OrderItemAdded; currency "" leaves the field out, as a
// version 1 event reads where version 2 is not registered.
func (b *events) item(order, item string, quantity int32, price, currency string) *events {
	b.t.Helper()
	d, err := avro.ParseDecimal(price)
	if err != nil {
		b.t.Fatal(err)
	}
	data := map[string]any{"itemId": item, "quantity": quantity, "price": d}
	if currency != "" {
		data["currency"] = currency
	}
	return b.add(TypeOrderItemAdded, order, data)
}

func (b *events) shipped(order, address string) *events {
	return b.add(TypeOrderShipped, order, map[string]any{"shippingAddress": address})
}

// deleted adds the $StreamDeleted of the order's stream, as the store
// appends it: at the stream's next version, its data the stream id.
func (b *events) deleted(order string, hard bool) *events {
	stream := "Order-" + order
	b.versions[stream]++
	b.list = append(b.list, projection.Event{
		ID: fmt.Sprintf("e-%d", len(b.list)), StreamID: stream, Category: "Order", Type: projection.StreamDeletedType,
		Version: b.versions[stream], Data: map[string]any{"streamId": stream, "hard": hard},
	})
	return b
}

// story is three orders interleaved as one partition would carry them: one
// created, filled and shipped, one left open, one shipped without items;
// with an item added twice, v1 items beside v2 items in EUR and an event
// type order_summary does not know.
func story(t testing.TB) []projection.Event {
	return newEvents(t).
		created("a1", "user1").
		item("a1", "widget-x", 3, "19.99", "").
		created("b2", "user2").
		item("a1", "gadget", 1, "0.01", "USD").
		add("OrderNoteAdded", "a1", map[string]any{"note": "fragile"}).
		item("b2", "widget-x", 2, "5.50", "EUR").
		item("b2", "widget-x", 1, "6.00", "EUR").
		shipped("a1", "123 Main St, Anytown, USA").
		created("c3", "user1").
		item("b2", "bolt", 10, "0.10", "").
		shipped("c3", "9 Rue de la Paix, Paris").
		list
}

var storyRows = []string{
	"order a1 customer=user1 status=shipped items=4 total=59.98 address=123 Main St, Anytown, USA created=2023-10-27T10:00:00 shipped=2023-10-27T10:07:00 version=5",
	"order b2 customer=user2 status=open items=13 total=18.00 address=<NULL> created=2023-10-27T10:02:00 shipped=<NULL> version=4",
	"order c3 customer=user1 status=shipped items=0 total=0 address=9 Rue de la Paix, Paris created=2023-10-27T10:08:00 shipped=2023-10-27T10:10:00 version=2",
	"item a1/gadget quantity=1 price=0.01 currency=USD",
	"item a1/widget-x quantity=3 price=19.99 currency=USD",
	"item b2/bolt quantity=10 price=0.10 currency=USD",
	"item b2/widget-x quantity=3 price=6.00 currency=EUR",
}

func TestTheStoryInOneBatchGivesExactRows(t *testing.T) {
	pool := newReadModel(t)
	applyBatches(t, pool, story(t))
	if diff := cmp.Diff(storyRows, rows(t, pool)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestEveryWayOfSplittingTheStoryGivesTheSameRows(t *testing.T) {
	all := story(t)
	check := splitChecker(t, newReadModel(t), storyRows, all)
	check("with empty batches", nil, all[:4], nil, all[4:])
}

// splitChecker applies all split at every point and one event a batch,
// each time to empty tables, checking that the rows are want; it returns
// the check, for other splits.
func splitChecker(t *testing.T, pool *pgxpool.Pool, want any, all []projection.Event) func(name string, batches ...[]projection.Event) {
	t.Helper()
	check := func(name string, batches ...[]projection.Event) {
		t.Helper()
		if _, err := pool.Exec(ctx, "TRUNCATE order_summary, order_summary_items"); err != nil {
			t.Fatal(err)
		}
		applyBatches(t, pool, batches...)
		if diff := cmp.Diff(want, rows(t, pool)); diff != "" {
			t.Errorf("%s: rows (-want +got):\n%s", name, diff)
		}
	}
	for i := 1; i < len(all); i++ {
		check(fmt.Sprintf("split before event %d", i), all[:i], all[i:])
	}
	var single [][]projection.Event
	for i := range all {
		single = append(single, all[i:i+1])
	}
	check("one event a batch", single...)
	return check
}

func TestTotalsAreExact(t *testing.T) {
	pool := newReadModel(t)
	b := newEvents(t).created("x", "u")
	for range 1000 {
		b.item("x", "penny", 1, "0.01", "")
	}
	b.item("x", "tenth", 7, "0.1", "").item("x", "big", 3, "9999999999999999.99", "")
	applyBatches(t, pool, b.list[:500], b.list[500:])
	var total, count string
	if err := pool.QueryRow(ctx, "SELECT total::text, item_count::text FROM order_summary").Scan(&total, &count); err != nil {
		t.Fatal(err)
	}
	// 1000 × 0.01 + 7 × 0.1 + 3 × 9999999999999999.99: beyond float64's 15-16 digits.
	if want := "30000000000000010.67"; total != want || count != "1010" {
		t.Errorf("total, item_count = %s, %s; want %s, 1010", total, count, want)
	}
}

func TestEventsOfUnknownTypesAreIgnored(t *testing.T) {
	pool := newReadModel(t)
	b := newEvents(t).
		add("OrderNoteAdded", "ghost", map[string]any{"note": "no such order"}).
		created("real", "u").
		add("OrderCancelled", "real", map[string]any{})
	applyBatches(t, pool, b.list)
	want := []string{"order real customer=u status=open items=0 total=0 address=<NULL> created=2023-10-27T10:01:00 shipped=<NULL> version=1"}
	if diff := cmp.Diff(want, rows(t, pool)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	applyBatches(t, pool, newEvents(t).add("Unknown", "only", map[string]any{}).list)
	if got := rows(t, pool); len(got) != 1 {
		t.Errorf("a batch of unknown events wrote rows: %q", got)
	}
}

func TestTheOrderIDComesFromTheStream(t *testing.T) {
	pool := newReadModel(t)
	b := newEvents(t).created("s1", "u")
	b.list[0].Data["orderId"] = "something-else"
	applyBatches(t, pool, b.list)
	var id string
	if err := pool.QueryRow(ctx, "SELECT order_id FROM order_summary").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != "s1" {
		t.Errorf("order_id = %q, want s1 from stream Order-s1", id)
	}
}

// deletionStory is the story with a1 deleted once shipped, b2 deleted
// softly while open and then written again, and an order with a "-" in its
// id deleted too; c3 stays as it was.
func deletionStory(t testing.TB) []projection.Event {
	b := &events{t: t, versions: map[string]int64{}, list: story(t)}
	for _, e := range b.list {
		b.versions[e.StreamID] = max(b.versions[e.StreamID], e.Version)
	}
	return b.
		created("d-4", "user4").
		item("d-4", "nut", 2, "0.25", "").
		deleted("a1", true).
		deleted("b2", false).
		deleted("d-4", false).
		created("b2", "user9").
		item("b2", "washer", 5, "0.02", "").
		list
}

var deletionStoryRows = []string{
	"order b2 customer=user9 status=open items=5 total=0.10 address=<NULL> created=2023-10-27T10:16:00 shipped=<NULL> version=7",
	storyRows[2], // c3
	"item b2/washer quantity=5 price=0.02 currency=USD",
}

func TestADeletedStreamRemovesItsOrder(t *testing.T) {
	t.Run("in one batch", func(t *testing.T) {
		pool := newReadModel(t)
		applyBatches(t, pool, deletionStory(t))
		if diff := cmp.Diff(deletionStoryRows, rows(t, pool)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
	t.Run("split anywhere, or one event a batch", func(t *testing.T) {
		splitChecker(t, newReadModel(t), deletionStoryRows, deletionStory(t))
	})
	t.Run("a deletion touches no other order, nor an order never seen", func(t *testing.T) {
		pool := newReadModel(t)
		applyBatches(t, pool, story(t), newEvents(t).deleted("ghost", false).deleted("a", true).list)
		if diff := cmp.Diff(storyRows, rows(t, pool)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
	t.Run("a deletion alone in a batch deletes", func(t *testing.T) {
		pool := newReadModel(t)
		b := newEvents(t).created("x", "u").item("x", "i", 1, "1.00", "")
		applyBatches(t, pool, b.list)
		b.list = nil
		applyBatches(t, pool, b.deleted("x", false).list)
		if got := rows(t, pool); len(got) != 0 {
			t.Errorf("after the deletion, rows = %q, want none", got)
		}
	})
}

// BenchmarkSummaryApply applies batches of 1000 events (100 orders of 10
// events each) and reports events applied per second, commits included.
func BenchmarkSummaryApply(b *testing.B) {
	pool := newReadModel(b)
	apply := SummaryProjection().Apply
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		evs := newEvents(b)
		for o := range 100 {
			id := fmt.Sprintf("r%d-o%d", round, o)
			evs.created(id, "c"+strings.Repeat("x", o%5))
			for i := range 8 {
				evs.item(id, fmt.Sprintf("item-%d", i%5), 2, "12.34", "EUR")
			}
			evs.shipped(id, "1 High Street, Springfield")
		}
		round++
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return apply(ctx, tx, evs.list) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(round*1000)/b.Elapsed().Seconds(), "events/s")
}
