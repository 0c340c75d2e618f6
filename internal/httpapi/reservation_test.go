package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestReservationsOverHTTP(t *testing.T) {
	a := newAPI(t, Options{})
	const email = "ada/lovelace@example.com" // a "/" in a value is escaped in the URL
	reserve := func(expected int, verb string) string {
		return `{"expectedVersion": ` + string(rune('0'+expected)) + `, "events": [` + orderCreated + `], "` + verb + `": [{"scope": "customer-email", "value": "` + email + `"}]}`
	}
	if r := a.do("POST", "/v1/streams/Customer-1/events", reserve(0, "reserve")); r.status != http.StatusCreated {
		t.Fatalf("append with a claim = %d %s", r.status, r.body)
	}
	path := "/v1/reservations/customer-email/" + url.PathEscape(email)
	var got struct {
		Scope, Value, StreamID, ReservedAt string
		Version                            int64
	}
	if r := a.do("GET", path, ""); r.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, r.status, r.body)
	} else if r.decode(t, &got); got.Scope != "customer-email" || got.Value != email || got.StreamID != "Customer-1" || got.Version != 1 || got.ReservedAt == "" {
		t.Errorf("GET %s = %s", path, r.body)
	}

	r := a.do("POST", "/v1/streams/Customer-2/events", reserve(0, "reserve"))
	if e := r.errorOf(); r.status != http.StatusConflict || e.Code != "reservation_taken" || e.Holder != "Customer-1" || e.Scope != "customer-email" || e.Value != email {
		t.Errorf("a second claim = %d %s, want 409 reservation_taken with the holder", r.status, r.body)
	}
	if r := a.do("GET", "/v1/streams/Customer-2/events", ""); r.status != http.StatusNotFound {
		t.Errorf("the refused append stored events: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/v1/streams/Customer-1/events", reserve(1, "release")); r.status != http.StatusCreated {
		t.Fatalf("the holder's release = %d %s", r.status, r.body)
	}
	if r := a.do("GET", path, ""); r.status != http.StatusNotFound || r.errorOf().Code != "reservation_not_found" {
		t.Errorf("GET a released value = %d %s, want 404 reservation_not_found", r.status, r.body)
	}

	// In a multi-stream append, each append claims for its own stream.
	body := `{"appends": [{"streamId": "Customer-3", "expectedVersion": 0, "events": [` + orderCreated + `],
		"reserve": [{"scope": "customer-email", "value": "` + email + `"}]}]}`
	if r := a.do("POST", "/v1/events", body); r.status != http.StatusCreated {
		t.Fatalf("a multi-stream append with a claim = %d %s", r.status, r.body)
	}
	if r := a.do("GET", path, ""); !strings.Contains(string(r.body), `"streamId":"Customer-3"`) {
		t.Errorf("after the multi-stream claim, GET %s = %s", path, r.body)
	}

	for _, tc := range []struct{ method, path, body, code, want string }{
		{"POST", "/v1/streams/Customer-4/events", `{"events": [` + orderCreated + `], "reserve": [{"scope": "bad scope", "value": "x"}]}`, "invalid_request", "reserve[0].scope"},
		{"POST", "/v1/streams/Customer-4/events", `{"events": [` + orderCreated + `], "reserve": [{"scope": "s", "value": "x"}], "release": [{"scope": "s", "value": "x"}]}`, "invalid_request", "release[0]: s \"x\" is also named at reserve[0]"},
		{"POST", "/v1/streams/Customer-4/events", `{"events": [` + orderCreated + `], "reserve": [{"scope": "s"}]}`, "invalid_request", "reserve[0].value is required"},
		{"POST", "/v1/events", `{"appends": [{"streamId": "Customer-4", "events": [` + orderCreated + `], "reserve": [{"scope": "s", "value": ""}]}]}`, "invalid_request", "appends[0].reserve[0].value is required"},
		{"GET", "/v1/reservations/bad%20scope/x", "", "invalid_request", "scope"},
	} {
		r := a.do(tc.method, tc.path, tc.body)
		if e := r.errorOf(); r.status != http.StatusBadRequest || e.Code != tc.code || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%s %s %s = %d %s, want 400 %s with %q", tc.method, tc.path, tc.body, r.status, r.body, tc.code, tc.want)
		}
	}
	if r := a.do("GET", "/v1/streams/Customer-4/events", ""); r.status != http.StatusNotFound {
		t.Errorf("a refused append stored events: %d %s", r.status, r.body)
	}
}
