package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

func TestTheShippedItemsProjectionListsAndFindsShippedItems(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	sqls, err := projection.LoadDir("../../projections")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	var p *projection.Projection
	for _, sp := range sqls {
		if err := sp.Check(e.latestSchema); err != nil {
			t.Errorf("Check(%s) against the registered schemas: %v", sp.Projection().Source, err)
		}
		if sp.Projection().Name == "shipped_items" {
			p = sp.Projection()
		}
	}
	if p == nil {
		t.Fatalf("no shipped_items among the projections of ../../projections")
	}
	e.run(e.runner(p, runner.Options{}).Run)

	e.appendStream("Order-s1",
		e.event("OrderCreated", `{"orderId":"s1","customerId":"c1","timestamp":"2026-02-01T09:00:00Z"}`),
		e.item("s1", "sku-kettle", 2), e.item("s1", "sku-mug", 1), e.item("s1", "sku-kettle", 3),
		e.event("OrderShipped", `{"orderId":"s1","shippingAddress":"12 Harbour Road, Dover","timestamp":"2026-02-01T10:30:00Z"}`))
	e.appendStream("Order-s2",
		e.event("OrderCreated", `{"orderId":"s2","customerId":"c2","timestamp":"2026-02-02T09:00:00Z"}`),
		e.item("s2", "sku-mug", 4),
		e.event("OrderShipped", `{"orderId":"s2","shippingAddress":"7 Castle Street, York","timestamp":"2026-02-03T08:15:00Z"}`))
	e.appendStream("Order-s3", // not shipped: its item waits
		e.event("OrderCreated", `{"orderId":"s3","customerId":"c3","timestamp":"2026-02-04T09:00:00Z"}`),
		e.item("s3", "sku-kettle", 1))

	e.waitForRows("shipped_items and the items waiting to ship", 30*time.Second, `
		SELECT format('shipped %s/%s quantity=%s to %s at %s', order_id, item_id, quantity, shipping_address,
		              to_char(shipped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
		FROM shipped_items
		UNION ALL SELECT format('pending %s/%s quantity=%s', order_id, item_id, quantity) FROM shipped_items_pending
		ORDER BY 1`,
		[]string{
			"pending s3/sku-kettle quantity=1",
			"shipped s1/sku-kettle quantity=5 to 12 Harbour Road, Dover at 2026-02-01T10:30:00Z",
			"shipped s1/sku-mug quantity=1 to 12 Harbour Road, Dover at 2026-02-01T10:30:00Z",
			"shipped s2/sku-mug quantity=4 to 7 Castle Street, York at 2026-02-03T08:15:00Z",
		})

	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"sku-kettle", []string{"s1/sku-kettle"}},
		{"sku-mug", []string{"s1/sku-mug", "s2/sku-mug"}},
		{"kettle", []string{"s1/sku-kettle"}},
		{"Dover", []string{"s1/sku-kettle", "s1/sku-mug"}},
		{"castle street", []string{"s2/sku-mug"}},
		{"harbour sku-mug", []string{"s1/sku-mug"}},
		{"york kettle", nil},
		{"teapot", nil},
	} {
		rows, err := e.db.Query(ctx, `SELECT order_id || '/' || item_id FROM shipped_items
			WHERE search @@ plainto_tsquery('simple', $1) ORDER BY 1`, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(tt.want, got, cmpEmpty) {
			t.Errorf("search for %q = %v, want %v", tt.q, got, tt.want)
		}
	}

	// Deleting an order removes its items, shipped (s1, hard) or
	// waiting (s3, soft); written again, s3 starts afresh.
	e.deleteStream("Order-s1", true)
	e.deleteStream("Order-s3", false)
	e.appendTo("Order-s3", e.item("s3", "sku-teapot", 2),
		e.event("OrderShipped", `{"orderId":"s3","shippingAddress":"1 Quay Lane, Hull","timestamp":"2026-02-05T11:00:00Z"}`))
	e.waitForRows("shipped_items after the deletions", 30*time.Second, `
		SELECT format('shipped %s/%s quantity=%s to %s', order_id, item_id, quantity, shipping_address) FROM shipped_items
		UNION ALL SELECT format('pending %s/%s quantity=%s', order_id, item_id, quantity) FROM shipped_items_pending
		ORDER BY 1`,
		[]string{
			"shipped s2/sku-mug quantity=4 to 7 Castle Street, York",
			"shipped s3/sku-teapot quantity=2 to 1 Quay Lane, Hull",
		})
}

// deleteStream deletes a stream at its current version, as
// DELETE /v1/streams/{id} does.
func (e *env) deleteStream(stream string, hard bool) {
	e.t.Helper()
	id := eventstore.MustParseStreamID(stream)
	ev := e.event(projection.StreamDeletedType, fmt.Sprintf(`{"streamId":%q,"hard":%t}`, stream, hard))
	if _, err := e.store.DeleteStream(ctx, eventstore.Deletion{Stream: id, Expected: eventstore.StreamExists, Hard: hard, Event: ev}); err != nil {
		e.t.Fatalf("delete %s: %v", stream, err)
	}
}

// appendTo appends events to a stream that exists.
func (e *env) appendTo(stream string, events ...eventstore.EventData) {
	e.t.Helper()
	if _, err := e.store.Append(ctx, eventstore.MustParseStreamID(stream), eventstore.StreamExists, events); err != nil {
		e.t.Fatalf("append to %s: %v", stream, err)
	}
}

// cmpEmpty makes nil and empty slices equal.
var cmpEmpty = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestEventsWrittenWithEitherSchemaVersionProject(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	e.run(e.runner(orders.SummaryProjection(), runner.Options{}).Run)
	// A projection of what order_summary is given: the schema each
	// OrderItemAdded was written with, and its currency as read.
	currencies := &projection.Projection{
		Name: "currencies", Categories: []string{"Order"},
		Setup: `CREATE TABLE IF NOT EXISTS currencies (
			stream_id text, version bigint, schema_id int, currency text, PRIMARY KEY (stream_id, version))`,
		Apply: func(ctx context.Context, tx pgx.Tx, events []projection.Event) error {
			for _, ev := range events {
				if ev.Type != "OrderItemAdded" {
					continue
				}
				currency, ok := ev.Data["currency"].(string)
				if !ok {
					currency = fmt.Sprintf("<%T %v>", ev.Data["currency"], ev.Data["currency"])
				}
				if _, err := tx.Exec(ctx, "INSERT INTO currencies VALUES ($1, $2, $3, $4)",
					ev.StreamID, ev.Version, ev.SchemaID, currency); err != nil {
					return err
				}
			}
			return nil
		},
	}
	e.run(e.runner(currencies, runner.Options{}).Run)

	v1, v2 := e.schemaFile("OrderItemAdded", 1), e.schemaFile("OrderItemAdded", 2)
	created := func(id string) eventstore.EventData {
		return e.event("OrderCreated", fmt.Sprintf(`{"orderId":%q,"customerId":"c-%s","timestamp":"2026-03-01T00:00:00Z"}`, id, id))
	}
	item := func(sc *avro.Schema, id, itemID string, quantity int, price, currency string) eventstore.EventData {
		data := fmt.Sprintf(`{"orderId":%q,"itemId":%q,"quantity":%d,"price":%q,"timestamp":"2026-03-01T00:01:00Z"`, id, itemID, quantity, price)
		if currency != "" {
			data += fmt.Sprintf(`,"currency":%q`, currency)
		}
		return e.eventWith(sc, "OrderItemAdded", data+"}")
	}
	e.appendStream("Order-old", created("old"), item(v1, "old", "kettle", 2, "10.50", ""))
	e.appendStream("Order-new", created("new"), item(v2, "new", "mug", 3, "4.00", "EUR"))
	e.appendStream("Order-mixed", created("mixed"),
		item(v1, "mixed", "kettle", 1, "10.50", ""),
		item(v2, "mixed", "kettle", 1, "11.00", "GBP"),
		item(v1, "mixed", "mug", 1, "2.00", ""))

	v1ID, v2ID := e.schemaID(v1), e.schemaID(v2)
	e.waitForRows("the schema and currency of each item added", 30*time.Second,
		"SELECT format('%s@%s schema=%s currency=%s', stream_id, version, schema_id, currency) FROM currencies ORDER BY 1",
		[]string{
			fmt.Sprintf("Order-mixed@2 schema=%d currency=USD", v1ID),
			fmt.Sprintf("Order-mixed@3 schema=%d currency=GBP", v2ID),
			fmt.Sprintf("Order-mixed@4 schema=%d currency=USD", v1ID),
			fmt.Sprintf("Order-new@2 schema=%d currency=EUR", v2ID),
			fmt.Sprintf("Order-old@2 schema=%d currency=USD", v1ID),
		})
	e.waitForRows("order_summary", 30*time.Second, `
		SELECT format('order %s items=%s total=%s version=%s', order_id, item_count, total, version) FROM order_summary
		UNION ALL SELECT format('item %s/%s quantity=%s price=%s currency=%s', order_id, item_id, quantity, price, currency)
		FROM order_summary_items
		ORDER BY 1`,
		[]string{
			"item mixed/kettle quantity=2 price=11.00 currency=GBP", // the latest addition's price and currency
			"item mixed/mug quantity=1 price=2.00 currency=USD",
			"item new/mug quantity=3 price=4.00 currency=EUR",
			"item old/kettle quantity=2 price=10.50 currency=USD",
			"order mixed items=3 total=23.50 version=4",
			"order new items=3 total=12.00 version=2",
			"order old items=2 total=21.00 version=2",
		})
}

// item is an OrderItemAdded of the latest schema, in EUR.
func (e *env) item(orderID, itemID string, quantity int) eventstore.EventData {
	e.t.Helper()
	return e.event("OrderItemAdded", fmt.Sprintf(
		`{"orderId":%q,"itemId":%q,"quantity":%d,"price":"9.99","timestamp":"2026-02-01T09:30:00Z","currency":"EUR"}`,
		orderID, itemID, quantity))
}

// appendStream appends events to a new stream.
func (e *env) appendStream(stream string, events ...eventstore.EventData) {
	e.t.Helper()
	if _, err := e.store.Append(ctx, eventstore.MustParseStreamID(stream), eventstore.NoStream, events); err != nil {
		e.t.Fatalf("append to %s: %v", stream, err)
	}
}

// schemaFile returns version version of the schema of event type typ, as
// ../../schemas holds it (and the env registered it).
func (e *env) schemaFile(typ string, version int) *avro.Schema {
	e.t.Helper()
	files, err := registry.ReadSchemaDir("../../schemas")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range files {
		if f.Schema.Name() == typ && f.Version == version {
			return f.Schema
		}
	}
	e.t.Fatalf("no version %d of %s in ../../schemas", version, typ)
	return nil
}

// latestSchema returns the latest registered schema of an event type.
func (e *env) latestSchema(typ string) (*avro.Schema, error) {
	return e.catalog.Latest(ctx, typ)
}

// eventWith encodes an event with schema sc, as a writer still on that
// version of the type would.
func (e *env) eventWith(sc *avro.Schema, typ, data string) eventstore.EventData {
	e.t.Helper()
	bin, err := sc.FromJSON([]byte(data))
	if err != nil {
		e.t.Fatalf("encode %s %s with %s: %v", typ, data, sc, err)
	}
	return eventstore.EventData{Type: typ, Schema: eventstore.Fingerprint(sc.Fingerprint()), Data: bin}
}

// schemaID returns the registry id of sc.
func (e *env) schemaID(sc *avro.Schema) int {
	e.t.Helper()
	id, err := e.catalog.SchemaID(ctx, eventstore.Fingerprint(sc.Fingerprint()))
	if err != nil {
		e.t.Fatalf("SchemaID(%s): %v", sc.FullName(), err)
	}
	return id
}

// waitForRows waits until query, run on the read-model schema, returns
// want (one text column), and fails with the difference if it does not in
// time.
func (e *env) waitForRows(what string, timeout time.Duration, query string, want []string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []string
		rows, err := e.db.Query(ctx, query)
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P01") { // else not set up yet
			e.t.Fatalf("%s: %v", strings.TrimSpace(query), err)
		}
		d := cmp.Diff(want, got, cmpEmpty)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s after %v (-want +got):\n%s", what, timeout, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
