package projector_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/registry"
	"github.com/strata-events/strata/projection"
)

// storeWithoutSystemSchemas returns the settings of a store whose
// registry holds the files of ../schemas but not the system schemas, as
// one applied to before stream deletions came.
func (e *env) storeWithoutSystemSchemas() []string {
	e.t.Helper()
	url, schema := harness.NewSchema(e.t)
	store, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		e.t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	files, err := registry.ReadSchemaDir("../schemas")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := registry.New(postgres.NewRegistryStore(store), registry.Options{}).Apply(ctx, files, false); err != nil {
		e.t.Fatal(err)
	}
	return []string{"STRATA_DATABASE_URL=" + url, "STRATA_DATABASE_SCHEMA=" + schema}
}

// deleteStream deletes the stream at its current version, as
// DELETE /v1/streams/{id} does, and returns the version of its
// $StreamDeleted.
func (e *env) deleteStream(stream string, hard bool) int64 {
	e.t.Helper()
	fp, bin, err := e.catalog.Encode(ctx, projection.StreamDeletedType, fmt.Appendf(nil, `{"streamId":%q,"hard":%t}`, stream, hard), nil)
	if err != nil {
		e.t.Fatalf("encode the deletion of %s: %v", stream, err)
	}
	res, err := e.store.DeleteStream(ctx, eventstore.Deletion{
		Stream: eventstore.MustParseStreamID(stream), Expected: eventstore.StreamExists, Hard: hard,
		Event: eventstore.EventData{Type: projection.StreamDeletedType, Schema: fp, Data: bin},
	})
	if err != nil {
		e.t.Fatalf("DeleteStream(%s, hard %t) = %v", stream, hard, err)
	}
	return res.LastVersion
}

// readOrder is GET /v1/orders/{id} once the projection has applied the
// stream's version after: its status code, and the order if 200.
func readOrder(t *testing.T, base, id string, after int64) (int, order) {
	t.Helper()
	var o order
	wait := url.QueryEscape(fmt.Sprintf("Order-%s@%d", id, after))
	return getJSON(t, base+"/v1/orders/"+id+"?timeout=20s&waitFor="+wait, &o), o
}

type order struct {
	OrderID, CustomerID, Status, Total string
	ItemCount, Version                 int64
}

// shippedOrders is GET /v1/shipped-items of every item shipped to the
// env's addresses ("N Harbour Road"), once shipped_items has applied the
// versions of waitFor ("Order-x@5"): the order ids of the items, one per
// item.
func shippedOrders(t *testing.T, base string, waitFor ...string) []string {
	t.Helper()
	q := url.Values{"q": {"harbour"}, "limit": {"1000"}, "timeout": {"20s"}, "waitFor": waitFor}
	var page struct {
		Items []struct{ OrderID, ItemID string }
	}
	if code := getJSON(t, base+"/v1/shipped-items?"+q.Encode(), &page); code != 200 {
		t.Fatalf("GET /v1/shipped-items?%s = %d", q.Encode(), code)
	}
	var ids []string
	for _, it := range page.Items {
		ids = append(ids, it.OrderID)
	}
	slices.Sort(ids)
	return ids
}

// A deleted stream leaves the read models: order_summary removes its order
// and items, shipped_items (its -- strata:on-stream-deleted) its rows. The
// other orders stay; a rebuild arrives at the same; and a stream written
// again after a soft deletion is projected from its new events.
func TestDeletedStreamsLeaveTheReadModels(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	base := "http://" + e.runInProcess()
	t.Cleanup(func() {
		e.db.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{e.schema + "_build_shipped_items"}.Sanitize()+" CASCADE")
	})

	e.order("soft", 3, true) // versions 1 to 5
	e.order("hard", 2, true) // 1 to 4
	e.order("kept", 2, true) // 1 to 4
	e.order("open", 1, false)
	for _, o := range []struct {
		id      string
		version int64
	}{{"soft", 5}, {"hard", 4}, {"kept", 4}, {"open", 2}} {
		if code, got := readOrder(t, base, o.id, o.version); code != 200 || got.Version != o.version {
			t.Fatalf("GET /v1/orders/%s = %d %+v, want 200 at version %d", o.id, code, got, o.version)
		}
	}
	want := []string{"hard", "hard", "kept", "kept", "soft", "soft", "soft"}
	if got := shippedOrders(t, base, "Order-soft@5", "Order-hard@4", "Order-kept@4"); !slices.Equal(got, want) {
		t.Fatalf("shipped items of orders %v, want %v", got, want)
	}

	soft, hard := e.deleteStream("Order-soft", false), e.deleteStream("Order-hard", true)
	closed := e.deleteStream("Order-open", false)
	if soft != 6 || hard != 5 || closed != 3 {
		t.Fatalf("the deletions are versions %d, %d and %d; want 6, 5 and 3", soft, hard, closed)
	}
	deletedState := func(when string) {
		t.Helper()
		for _, o := range []struct {
			id      string
			version int64
		}{{"soft", soft}, {"hard", hard}, {"open", closed}} {
			if code, got := readOrder(t, base, o.id, o.version); code != 404 {
				t.Errorf("%s: GET /v1/orders/%s = %d %+v, want 404", when, o.id, code, got)
			}
		}
		if code, got := readOrder(t, base, "kept", 4); code != 200 || got.Status != "shipped" || got.ItemCount != 3 || got.Total != "4.97" {
			t.Errorf("%s: GET /v1/orders/kept = %d %+v, want it as it was: shipped, 3 items, 4.97", when, code, got)
		}
		want := []string{"kept", "kept"}
		if got := shippedOrders(t, base, fmt.Sprint("Order-soft@", soft), fmt.Sprint("Order-hard@", hard)); !slices.Equal(got, want) {
			t.Errorf("%s: shipped items of orders %v, want %v", when, got, want)
		}
	}
	deletedState("after the deletions")
	e.waitForReplay(30 * time.Second)

	for _, name := range []string{"order_summary", "shipped_items"} {
		if out, errOut, err := e.cli("rebuild", name); err != nil {
			t.Fatalf("projector rebuild %s = %v\nstdout: %s\nstderr: %s", name, err, out, errOut)
		}
	}
	deletedState("after a rebuild")
	e.waitForReplay(30 * time.Second)

	// Written again after its soft deletion, the order is new.
	var again []eventstore.EventData
	for _, ev := range []struct{ typ, data string }{
		{"OrderCreated", `{"orderId":"soft","customerId":"c-again","timestamp":"2026-02-01T00:00:00Z"}`},
		{"OrderItemAdded", `{"orderId":"soft","itemId":"item-9","quantity":2,"price":"1.50","timestamp":"2026-02-01T00:00:01Z","currency":"EUR"}`},
	} {
		fp, bin, err := e.catalog.Encode(ctx, ev.typ, []byte(ev.data), nil)
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, eventstore.EventData{Type: ev.typ, Schema: fp, Data: bin})
	}
	res, err := e.store.Append(ctx, eventstore.MustParseStreamID("Order-soft"), eventstore.ExpectedVersion(soft), again)
	if err != nil || res.LastVersion != soft+2 {
		t.Fatalf("append to Order-soft after its soft deletion = %+v, %v; want versions %d and %d", res, err, soft+1, soft+2)
	}
	code, got := readOrder(t, base, "soft", res.LastVersion)
	if wantOrder := (order{OrderID: "soft", CustomerID: "c-again", Status: "open", Total: "3.00", ItemCount: 2, Version: soft + 2}); code != 200 || got != wantOrder {
		t.Errorf("GET /v1/orders/soft written again = %d %+v, want 200 %+v: only its new events", code, got, wantOrder)
	}
	if code, got := readOrder(t, base, "hard", hard); code != 404 {
		t.Errorf("GET /v1/orders/hard = %d %+v, want 404 still", code, got)
	}
	e.waitForReplay(30 * time.Second)
	if out, errOut, err := e.cli("rebuild", "order_summary"); err != nil {
		t.Fatalf("projector rebuild order_summary = %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if code, got := readOrder(t, base, "soft", res.LastVersion); code != 200 || got.Version != soft+2 || got.ItemCount != 2 {
		t.Errorf("after a rebuild, GET /v1/orders/soft = %d %+v, want it from its new events only", code, got)
	}
	e.waitForReplay(30 * time.Second)
}
