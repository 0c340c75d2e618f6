package projector_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// errorAnswer is the error body of the read API.
type errorAnswer struct {
	Error struct{ Code, Message string }
}

// Read-your-writes: a read that waits for an append's position answers
// once the projection behind the route has applied it; one that waits
// for more than was written answers 504 wait_timeout saying how far the
// projection got; a halted projection answers 503 at once; bad
// parameters are 400s.
func TestReadsWaitForTheWritesAskedFor(t *testing.T) {
	e := newEnv(t)
	e.startRelay()
	base := "http://" + e.runInProcess()
	stream := eventstore.MustParseStreamID("Order-w1")

	for i := range 5 {
		id := fmt.Sprint("w", i)
		e.order(id, 2, false) // versions 1 to 3
		page, err := e.store.ReadStream(ctx, eventstore.MustParseStreamID("Order-"+id), eventstore.StreamQuery{Direction: eventstore.Backward, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		last := page.Events[0]
		token := eventstore.Written{Stream: last.StreamID, Version: last.Version, Position: last.GlobalPosition}.Token()
		var order struct {
			OrderID string
			Version int64
		}
		// The first wait spans the projector's start (joining its groups,
		// on a busy machine): the longest timeout, not the default 5s.
		if code := getJSON(t, base+"/v1/orders/"+id+"?waitForPosition="+token+"&timeout=30s", &order); code != 200 || order.Version != 3 {
			t.Fatalf("GET /v1/orders/%s waiting for its append = %d %+v, want 200 at version 3", id, code, order)
		}
	}
	// shipped_items ignores these events, but has applied them all the same.
	var items struct{ Items []any }
	if code := getJSON(t, base+"/v1/shipped-items?q=x&waitFor=Order-w1@3&waitFor=Order-w4@3", &items); code != 200 {
		t.Errorf("GET /v1/shipped-items waiting for events it does not use = %d, want 200", code)
	}
	var projections struct{ Projections []any }
	if code := getJSON(t, base+"/v1/projections?waitFor=Order-w2@3&timeout=2s", &projections); code != 200 {
		t.Errorf("GET /v1/projections waiting for both projections = %d, want 200", code)
	}

	var refused errorAnswer
	code := getJSON(t, base+"/v1/orders/w1?waitFor=Order-w1@4&timeout=100ms", &refused)
	if code != 504 || refused.Error.Code != "wait_timeout" || !strings.Contains(refused.Error.Message, "up to version 3") {
		t.Errorf("a wait for a version not written = %d %+v, want 504 wait_timeout naming version 3", code, refused)
	}

	for _, query := range []string{
		"waitFor=Order-w1", "waitFor=Order-w1@0", "waitFor=bad@1", "waitForPosition=AAAA", "waitFor=Order-w1@1&timeout=31s",
		"waitFor=Order-w1@1&timeout=soon", "timeout=1s", "waitFor=Customer-1@1",
	} {
		var bad errorAnswer
		if code := getJSON(t, base+"/v1/orders/w1?"+query, &bad); code != 400 || bad.Error.Code != "invalid_request" {
			t.Errorf("GET /v1/orders/w1?%s = %d %+v, want 400 invalid_request", query, code, bad)
		}
	}

	// A halted projection will not apply anything: no point in waiting.
	db := e.pool(e.schema)
	if _, err := db.Exec(ctx, `UPDATE projections SET state = 'halted' WHERE name = 'order_summary'`); err != nil {
		t.Fatal(err)
	}
	defer db.Exec(ctx, `UPDATE projections SET state = 'running' WHERE name = 'order_summary'`)
	var halted errorAnswer
	start := time.Now()
	code = getJSON(t, base+"/v1/orders/w1?timeout=30s&waitFor="+url.QueryEscape(stream.String()+"@9"), &halted)
	if code != 503 || halted.Error.Code != "projection_halted" || !strings.Contains(halted.Error.Message, "projector resume order_summary") {
		t.Errorf("a wait on a halted projection = %d %+v after %s, want 503 projection_halted", code, halted, time.Since(start))
	}
	if code := getJSON(t, base+"/v1/orders/w1?waitFor=Order-w1@3", &struct{}{}); code != 200 {
		t.Errorf("a wait for what a halted projection has applied = %d, want 200", code)
	}
}
