package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestAppendToSeveralStreamsAtOnce(t *testing.T) {
	a := newAPI(t, Options{})
	if r := a.do("POST", "/v1/streams/Order-1/events", appendBody(0, orderCreated)); r.status != http.StatusCreated {
		t.Fatalf("setup = %d %s", r.status, r.body)
	}
	body := `{"appends": [
		{"streamId": "Order-1", "expectedVersion": 1, "events": [` + strings.Replace(itemAdded, `{"type"`, `{"id": "0190f2a4-8d3c-7b1e-9f00-0000000000a1", "type"`, 1) + `]},
		{"streamId": "Order-2", "expectedVersion": 0, "events": [` + strings.Replace(orderCreated, `{"type"`, `{"id": "0190f2a4-8d3c-7b1e-9f00-0000000000a2", "type"`, 1) + `]}],
		"guards": [{"streamId": "Cart-9", "expectedVersion": 0}]}`
	first := a.do("POST", "/v1/events", body)
	var got struct {
		Appends []struct {
			StreamID                  string
			FirstVersion, LastVersion int64
			Position                  string
		}
	}
	first.decode(t, &got)
	if first.status != http.StatusCreated || len(got.Appends) != 2 || got.Appends[0].StreamID != "Order-1" || got.Appends[0].LastVersion != 2 ||
		got.Appends[1].StreamID != "Order-2" || got.Appends[1].LastVersion != 1 || got.Appends[1].Position == "" {
		t.Fatalf("POST /v1/events = %d %s, want 201 with each stream's versions", first.status, first.body)
	}
	if again := a.do("POST", "/v1/events", body); again.status != http.StatusOK || string(again.body) != string(first.body) {
		t.Errorf("the retry = %d %s, want 200 %s", again.status, again.body, first.body)
	}

	t.Run("a failed expectation or guard is 409 naming the stream, and stores nothing", func(t *testing.T) {
		for _, tc := range []struct{ body, stream string }{
			{`{"appends": [{"streamId": "Order-1", "expectedVersion": 2, "events": [` + itemAdded + `]}, {"streamId": "Order-2", "expectedVersion": 5, "events": [` + itemAdded + `]}]}`, "Order-2"},
			{`{"appends": [{"streamId": "Order-1", "expectedVersion": 2, "events": [` + itemAdded + `]}], "guards": [{"streamId": "Order-2", "expectedVersion": 0}]}`, "Order-2"},
		} {
			r := a.do("POST", "/v1/events", tc.body)
			if e := r.errorOf(); r.status != http.StatusConflict || e.Code != "wrong_expected_version" || !strings.Contains(string(r.body), `"streamId":"`+tc.stream+`"`) {
				t.Errorf("POST /v1/events %s = %d %s, want 409 wrong_expected_version of %s", tc.body, r.status, r.body, tc.stream)
			}
		}
		if r := a.do("GET", "/v1/streams/Order-1/events", ""); !strings.Contains(string(r.body), `"version":2`) || strings.Contains(string(r.body), `"version":3`) {
			t.Errorf("Order-1 after the refusals = %s", r.body)
		}
	})

	t.Run("bad input is refused, naming the part at fault", func(t *testing.T) {
		events := func(n int) string {
			var b []string
			for range n {
				b = append(b, itemAdded)
			}
			return strings.Join(b, ",")
		}
		for _, tc := range []struct{ body, code, want string }{
			{`{}`, "invalid_request", "appends is required"},
			{`{"appends": []}`, "invalid_request", "appends is empty"},
			{`{"appends": [{"expectedVersion": 0, "events": [` + itemAdded + `]}]}`, "invalid_stream_id", "appends[0].streamId is required"},
			{`{"appends": [{"streamId": "Order-x", "events": []}]}`, "invalid_request", "appends[0].events is required"},
			{`{"appends": [{"streamId": "Order-x", "events": [` + itemAdded + `]}, {"streamId": "Order-x", "events": [` + itemAdded + `]}]}`, "invalid_request", "Order-x is also appends[0]'s"},
			{`{"appends": [{"streamId": "Order-x", "events": [` + itemAdded + `, ` + strings.Replace(itemAdded, `"quantity": 2`, `"quantity": "two"`, 1) + `]}]}`, "schema_violation", "appends[0].events[1].data.quantity"},
			{`{"appends": [{"streamId": "Order-x", "events": [` + itemAdded + `]}], "guards": [{"streamId": "Order-y", "expectedVersion": -1}]}`, "invalid_expected_version", "guards[0].expectedVersion"},
			{`{"appends": [{"streamId": "Order-x", "events": [` + itemAdded + `]}], "guards": [{"streamId": "Order-y"}]}`, "invalid_expected_version", "guards[0].expectedVersion is required"},
			{`{"appends": [{"streamId": "Order-x", "events": [` + events(600) + `]}, {"streamId": "Order-y", "events": [` + events(401) + `]}]}`, "too_large", "at most 1000 events in all"},
			{`{"appends": [{"streamId": "Order-x", "events": [` + itemAdded + `]}], "extra": 1}`, "invalid_request", "extra"},
		} {
			r := a.do("POST", "/v1/events", tc.body)
			if e := r.errorOf(); e.Code != tc.code || !strings.Contains(e.Message, tc.want) {
				t.Errorf("POST /v1/events %.80s... = %d %s, want %s saying %q", tc.body, r.status, r.body, tc.code, tc.want)
			}
		}
		var guards []string
		for i := range 100 {
			guards = append(guards, fmt.Sprintf(`{"streamId": "G-%d", "expectedVersion": 0}`, i))
		}
		r := a.do("POST", "/v1/events", `{"appends": [{"streamId": "Order-x", "events": [`+itemAdded+`]}], "guards": [`+strings.Join(guards, ",")+`]}`)
		if e := r.errorOf(); e.Code != "too_large" || !strings.Contains(e.Message, "at most 100 streams") {
			t.Errorf("101 streams = %d %s, want too_large", r.status, r.body)
		}
	})
}
