package httpapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
)

// Without tracing set up, an append's traceparent and tracestate are
// stored as they came, checked: the caller's trace reaches the records.
// A malformed one is dropped, and an append without one stores none.
func TestAnAppendStoresTheRequestsTraceContext(t *testing.T) {
	a := newAPI(t, Options{})
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		stream, parent, state string
		wantParent, wantState string
	}{
		{"Order-t1", parent, "strata=1", parent, "strata=1"},
		{"Order-t2", "00-not-a-trace-01", "strata=1", "", ""},
		{"Order-t3", "", "", "", ""},
	} {
		var headers []string
		if tc.parent != "" {
			headers = []string{"traceparent", tc.parent, "tracestate", tc.state}
		}
		if r := a.do("POST", "/v1/streams/"+tc.stream+"/events", appendBody(0, orderCreated), headers...); r.status != http.StatusCreated {
			t.Fatalf("append = %d %s", r.status, r.body)
		}
		page, err := a.store.ReadStream(context.Background(), eventstore.MustParseStreamID(tc.stream), eventstore.StreamQuery{})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("read %s: %v", tc.stream, err)
		}
		if m := page.Events[0].Metadata; m.TraceParent != tc.wantParent || m.TraceState != tc.wantState {
			t.Errorf("traceparent %q: stored %q and %q, want %q and %q", tc.parent, m.TraceParent, m.TraceState, tc.wantParent, tc.wantState)
		}
	}
}
