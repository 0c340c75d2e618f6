package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// api is a Server over a PostgreSQL store of its own, behind real HTTP.
type api struct {
	t     *testing.T
	url   string
	store *postgres.Store
}

func newAPI(t *testing.T, opts Options) *api {
	t.Helper()
	store := newPostgresStore(t)
	srv := httptest.NewServer(New(store, loadTestSchemas(t), opts).Handler())
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, store: store}
}

// newPostgresStore returns a migrated store in a schema of its own.
func newPostgresStore(t *testing.T) *postgres.Store {
	t.Helper()
	url, schema := harness.NewSchema(t)
	store, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(context.Background(), postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	return store
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorOf returns the error object of a response.
func (r response) errorOf() errorBody {
	var e struct{ Error errorBody }
	json.Unmarshal(r.body, &e)
	return e.Error
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; headers come in name, value pairs.
func (a *api) do(method, path, body string, headers ...string) response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (a *api) countAll() int {
	a.t.Helper()
	n := 0
	var cursor eventstore.Cursor
	for {
		page, err := a.store.ReadAll(context.Background(), cursor, eventstore.MaxReadLimit)
		if err != nil {
			a.t.Fatal(err)
		}
		n += len(page.Events)
		cursor = page.Next
		if len(page.Events) == 0 {
			return n
		}
	}
}

const (
	orderCreated = `{"type": "OrderCreated", "data": {"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}}`
	itemAdded    = `{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4", "itemId": "widget-x", "quantity": 2, "price": 15.99, "timestamp": "2023-10-27T10:01:30Z"}}`
	shipped      = `{"type": "OrderShipped", "data": {"orderId": "a1b2c3d4", "shippingAddress": "123 Main St, Anytown, USA", "timestamp": "2023-10-27T11:30:00Z"}}`
)

func appendBody(expected int, events ...string) string {
	return fmt.Sprintf(`{"expectedVersion": %d, "events": [%s]}`, expected, strings.Join(events, ","))
}

func TestAppendThenReadTheStream(t *testing.T) {
	a := newAPI(t, Options{})
	withMeta := strings.Replace(orderCreated, `"data"`, `"metadata": {"correlationId": "c-1", "causationId": "cmd-1", "userId": "u-9", "tenantId": "t-1", "custom": {"source": "web"}}, "data"`, 1)
	r := a.do("POST", "/v1/streams/Order-a1b2c3d4/events", appendBody(0, withMeta, itemAdded, shipped))
	if r.status != http.StatusCreated {
		t.Fatalf("append = %d %s, want 201", r.status, r.body)
	}
	var appended appendResponse
	r.decode(t, &appended)
	if appended.StreamID != "Order-a1b2c3d4" || appended.FirstVersion != 1 || appended.LastVersion != 3 || len(appended.Events) != 3 {
		t.Errorf("append response = %+v", appended)
	}
	if w, err := eventstore.ParseWrittenToken(appended.Position); err != nil || w.Stream.String() != "Order-a1b2c3d4" || w.Version != 3 ||
		len(appended.Events) == 3 && w.Position != appended.Events[2].GlobalPosition {
		t.Errorf("the append's position %q = %+v, %v; want its last event, Order-a1b2c3d4@3", appended.Position, w, err)
	}
	if loc := r.header.Get("Location"); loc != "/v1/streams/Order-a1b2c3d4/events?from=1" {
		t.Errorf("Location = %q", loc)
	}

	r = a.do("GET", "/v1/streams/Order-a1b2c3d4/events", "")
	if r.status != http.StatusOK {
		t.Fatalf("read = %d %s", r.status, r.body)
	}
	var page struct {
		Events []struct {
			ID             string                     `json:"id"`
			StreamID       string                     `json:"streamId"`
			Type           string                     `json:"type"`
			Version        int64                      `json:"version"`
			GlobalPosition int64                      `json:"globalPosition"`
			RecordedAt     string                     `json:"recordedAt"`
			SchemaID       int                        `json:"schemaId"`
			Data           map[string]json.RawMessage `json:"data"`
			Metadata       map[string]any             `json:"metadata"`
		}
		Next    int64
		Version int64
	}
	r.decode(t, &page)
	if len(page.Events) != 3 || page.Next != 4 || page.Version != 3 {
		t.Fatalf("read = %d events, next %d, version %d; want 3, 4, 3", len(page.Events), page.Next, page.Version)
	}
	first := page.Events[0]
	if first.ID != appended.Events[0].ID.String() || first.StreamID != "Order-a1b2c3d4" || first.Type != "OrderCreated" ||
		first.Version != 1 || first.GlobalPosition != appended.Events[0].GlobalPosition || first.SchemaID == 0 || first.RecordedAt == "" {
		t.Errorf("first event = %+v", first)
	}
	wantMeta := map[string]any{"correlationId": "c-1", "causationId": "cmd-1", "userId": "u-9", "tenantId": "t-1", "custom": map[string]any{"source": "web"}}
	if diff := cmp.Diff(wantMeta, first.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	item := page.Events[1].Data
	if string(item["price"]) != `"15.99"` || string(item["quantity"]) != "2" || string(item["timestamp"]) != `"2023-10-27T10:01:30Z"` {
		t.Errorf("item data = %s, %s, %s; want the exact decimal, the count and the RFC 3339 time", item["price"], item["quantity"], item["timestamp"])
	}
	if string(item["currency"]) != `"USD"` {
		t.Errorf("item currency = %s: data is read with the type's latest schema", item["currency"])
	}

	r = a.do("GET", "/v1/streams/Order-a1b2c3d4/events?direction=backward&limit=2", "")
	r.decode(t, &page)
	if len(page.Events) != 2 || page.Events[0].Version != 3 || page.Next != 1 {
		t.Errorf("backward read = %d events from version %d, next %d; want 2 from 3, next 1", len(page.Events), page.Events[0].Version, page.Next)
	}
}

func TestARetryWithTheSameIDsIsIdempotent(t *testing.T) {
	a := newAPI(t, Options{})
	withID := func(e, id string) string { return strings.Replace(e, `{"type"`, `{"id": "`+id+`", "type"`, 1) }
	body := appendBody(0, withID(orderCreated, "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a"), withID(itemAdded, "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8b"))
	first := a.do("POST", "/v1/streams/Order-idem/events", body)
	again := a.do("POST", "/v1/streams/Order-idem/events", body)
	if first.status != http.StatusCreated || again.status != http.StatusOK {
		t.Fatalf("append, retry = %d, %d; want 201, 200", first.status, again.status)
	}
	if !bytes.Equal(first.body, again.body) {
		t.Errorf("retry body differs:\n%s\n%s", first.body, again.body)
	}
	if n := a.countAll(); n != 2 {
		t.Errorf("store holds %d events after a retry, want 2", n)
	}
}

func TestAllAndCategoryPageByCursor(t *testing.T) {
	a := newAPI(t, Options{})
	for i := 0; i < 5; i++ {
		for _, s := range []string{"Order-p1", "Customer-p2"} {
			r := a.do("POST", "/v1/streams/"+s+"/events", appendBody(-1, orderCreated))
			if r.status != http.StatusCreated {
				t.Fatalf("append: %d %s", r.status, r.body)
			}
		}
	}
	read := func(path string) []string {
		var got []string
		after := ""
		for i := 0; i < 20; i++ {
			var page struct {
				Events []struct {
					StreamID string
					Version  int64
				}
				Next string
			}
			r := a.do("GET", path+"?limit=3&after="+after, "")
			if r.status != http.StatusOK {
				t.Fatalf("GET %s = %d %s", path, r.status, r.body)
			}
			r.decode(t, &page)
			if page.Next == "" {
				t.Fatalf("GET %s: no next cursor", path)
			}
			for _, e := range page.Events {
				got = append(got, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
			}
			if len(page.Events) == 0 {
				return got
			}
			after = page.Next
		}
		t.Fatalf("GET %s never ended", path)
		return nil
	}
	if all := read("/v1/events"); len(all) != 10 || all[0] != "Order-p1@1" || all[9] != "Customer-p2@5" {
		t.Errorf("$all = %v", all)
	}
	want := []string{"Order-p1@1", "Order-p1@2", "Order-p1@3", "Order-p1@4", "Order-p1@5"}
	if diff := cmp.Diff(want, read("/v1/categories/Order/events")); diff != "" {
		t.Errorf("category Order (-want +got):\n%s", diff)
	}
}

func TestMalformedRequestsAreRefusedAndChangeNothing(t *testing.T) {
	a := newAPI(t, Options{MaxBodyBytes: 1 << 20})
	if r := a.do("POST", "/v1/streams/Order-1/events", appendBody(0, orderCreated)); r.status != http.StatusCreated {
		t.Fatalf("setup append = %d %s", r.status, r.body)
	}
	many := strings.TrimSuffix(strings.Repeat(orderCreated+",", eventstore.MaxAppendEvents+1), ",")
	event := func(replace ...string) string { return strings.NewReplacer(replace...).Replace(itemAdded) }
	var existing appendResponse
	a.do("GET", "/v1/streams/Order-1/events", "").decode(t, &struct{ Events *[]appendedEvent }{&existing.Events})

	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		mentions                 string
	}{
		{"a body that is cut short", "POST", "/v1/streams/Order-2/events", `{`, 400, "invalid_request", "incomplete JSON"},
		{"a body that is not JSON", "POST", "/v1/streams/Order-2/events", `{events}`, 400, "invalid_request", "not valid JSON"},
		{"an array body", "POST", "/v1/streams/Order-2/events", `[]`, 400, "invalid_request", "want an object"},
		{"an empty body", "POST", "/v1/streams/Order-2/events", ``, 400, "invalid_request", "empty"},
		{"text after the JSON", "POST", "/v1/streams/Order-2/events", appendBody(0, orderCreated) + ` x`, 400, "invalid_request", "more after"},
		{"an unknown top-level field", "POST", "/v1/streams/Order-2/events", `{"event": []}`, 400, "invalid_request", `unknown field "event"`},
		{"events as an object", "POST", "/v1/streams/Order-2/events", `{"events": {}}`, 400, "invalid_request", "want an array"},
		{"no events field", "POST", "/v1/streams/Order-2/events", `{"expectedVersion": 0}`, 400, "invalid_request", "events is required"},
		{"no events", "POST", "/v1/streams/Order-2/events", `{"events": []}`, 400, "invalid_request", "empty"},
		{"1001 events", "POST", "/v1/streams/Order-2/events", appendBody(0, many), 413, "too_large", "1001"},
		{"a body over the limit", "POST", "/v1/streams/Order-2/events", `{"events": [` + strings.Repeat(" ", 1<<20) + `]}`, 413, "too_large", "larger than"},
		{"invalid UTF-8", "POST", "/v1/streams/Order-2/events", strings.Replace(appendBody(0, orderCreated), "user123", "user\xff", 1), 400, "invalid_request", "UTF-8"},
		{"expectedVersion as a string", "POST", "/v1/streams/Order-2/events", `{"expectedVersion": "0", "events": [` + orderCreated + `]}`, 400, "invalid_expected_version", "whole number"},
		{"a fractional expectedVersion", "POST", "/v1/streams/Order-2/events", `{"expectedVersion": 1.5, "events": [` + orderCreated + `]}`, 400, "invalid_expected_version", "whole number"},
		{"expectedVersion -3", "POST", "/v1/streams/Order-2/events", appendBody(-3, orderCreated), 400, "invalid_expected_version", "-3"},
		{"an absurd expectedVersion", "POST", "/v1/streams/Order-2/events", `{"expectedVersion": 1e30, "events": [` + orderCreated + `]}`, 400, "invalid_expected_version", "whole number"},
		{"expectedVersion true", "POST", "/v1/streams/Order-2/events", `{"expectedVersion": true, "events": [` + orderCreated + `]}`, 400, "invalid_expected_version", "whole number"},
		{"an event without a type", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"data": {}}`), 400, "invalid_request", "events[0].type is required"},
		{"a type that is a number", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": 5, "data": {}}`), 400, "invalid_request", "events[0].type: want a string"},
		{"a type with a dot", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": "a.B", "data": {}}`), 400, "invalid_request", "events[0].type"},
		{"an unknown type", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": "OrderExploded", "data": {}}`), 422, "unknown_event_type", "OrderExploded"},
		{"an event without data", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": "OrderCreated"}`), 400, "invalid_request", "events[0].data is required"},
		{"null data", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": "OrderCreated", "data": null}`), 400, "invalid_request", "events[0].data is required"},
		{"data that is a string", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": "OrderCreated", "data": "hello"}`), 422, "schema_violation", "events[0].data"},
		{"a missing field", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"type": "OrderCreated", "data": {"orderId": "x", "timestamp": "2023-10-27T10:00:00Z"}}`), 422, "schema_violation", "customerId"},
		{"a count as text", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`"quantity": 2`, `"quantity": "two"`)), 422, "schema_violation", "events[0].data.quantity"},
		{"a fractional count", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`"quantity": 2`, `"quantity": 2.5`)), 422, "schema_violation", "events[0].data.quantity"},
		{"a count out of range", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`"quantity": 2`, `"quantity": 99999999999`)), 422, "schema_violation", "events[0].data.quantity"},
		{"a price finer than cents", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`15.99`, `15.999`)), 422, "schema_violation", "events[0].data.price"},
		{"a price that is not a number", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`15.99`, `"cheap"`)), 422, "schema_violation", "events[0].data.price"},
		{"an unknown data field", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`"quantity": 2`, `"quantity": 2, "colour": "red"`)), 422, "schema_violation", "colour"},
		{"a time that is not a time", "POST", "/v1/streams/Order-2/events", appendBody(0, event(`"2023-10-27T10:01:30Z"`, `"yesterday"`)), 422, "schema_violation", "events[0].data.timestamp"},
		{"a violation in the second event", "POST", "/v1/streams/Order-2/events", appendBody(0, orderCreated, event(`15.99`, `"-1.001"`)), 422, "schema_violation", "events[1].data.price"},
		{"an id that is not a UUID", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"id": "abc", "type": "OrderCreated", "data": {}}`), 400, "invalid_request", "events[0].id"},
		{"the nil UUID", "POST", "/v1/streams/Order-2/events", appendBody(0, `{"id": "00000000-0000-0000-0000-000000000000", "type": "OrderCreated", "data": {}}`), 400, "invalid_request", "nil UUID"},
		{"one id twice", "POST", "/v1/streams/Order-2/events", appendBody(0,
			strings.Replace(orderCreated, `{"type"`, `{"id": "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a", "type"`, 1),
			strings.Replace(orderCreated, `{"type"`, `{"id": "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a", "type"`, 1)), 400, "invalid_request", "also the id"},
		{"metadata that is a string", "POST", "/v1/streams/Order-2/events", appendBody(0, strings.Replace(orderCreated, `"data"`, `"metadata": "x", "data"`, 1)), 400, "invalid_request", "events[0].metadata: want an object"},
		{"an unknown metadata field", "POST", "/v1/streams/Order-2/events", appendBody(0, strings.Replace(orderCreated, `"data"`, `"metadata": {"user": "x"}, "data"`, 1)), 400, "invalid_request", `unknown field "user"`},
		{"a numeric userId", "POST", "/v1/streams/Order-2/events", appendBody(0, strings.Replace(orderCreated, `"data"`, `"metadata": {"userId": 9}, "data"`, 1)), 400, "invalid_request", "events[0].metadata.userId: want a string"},
		{"a custom value that is not a string", "POST", "/v1/streams/Order-2/events", appendBody(0, strings.Replace(orderCreated, `"data"`, `"metadata": {"custom": {"n": 1}}, "data"`, 1)), 400, "invalid_request", "custom"},
		{"an unknown event field", "POST", "/v1/streams/Order-2/events", appendBody(0, strings.Replace(orderCreated, `"data"`, `"colour": "red", "data"`, 1)), 400, "invalid_request", `unknown field "colour"`},
		{"a stream id without an id", "POST", "/v1/streams/Order/events", appendBody(0, orderCreated), 400, "invalid_stream_id", "Order"},
		{"a stream id with a space", "POST", "/v1/streams/Or%20der-1/events", appendBody(0, orderCreated), 400, "invalid_stream_id", "offset 2"},
		{"a stream id too long", "POST", "/v1/streams/Order-" + strings.Repeat("x", 201) + "/events", appendBody(0, orderCreated), 400, "invalid_stream_id", "longer than 200"},
		{"a category starting with a digit", "POST", "/v1/streams/9Order-1/events", appendBody(0, orderCreated), 400, "invalid_stream_id", "letter"},
		{"a wrong expected version", "POST", "/v1/streams/Order-1/events", appendBody(5, itemAdded), 409, "wrong_expected_version", "expected 5, actual version 1"},
		{"an id used in another stream", "POST", "/v1/streams/Order-2/events", appendBody(0,
			strings.Replace(orderCreated, `{"type"`, `{"id": "`+existing.Events[0].ID.String()+`", "type"`, 1)), 409, "duplicate_event_id", "Order-1"},
		{"a limit of 0", "GET", "/v1/streams/Order-1/events?limit=0", "", 400, "invalid_request", "limit"},
		{"a negative limit", "GET", "/v1/events?limit=-1", "", 400, "invalid_request", "limit"},
		{"a limit over 1000", "GET", "/v1/events?limit=1001", "", 400, "invalid_request", "limit"},
		{"a limit that is not a number", "GET", "/v1/categories/Order/events?limit=ten", "", 400, "invalid_request", "limit"},
		{"limit given twice", "GET", "/v1/events?limit=1&limit=2", "", 400, "invalid_request", "limit is given 2 times"},
		{"from 0", "GET", "/v1/streams/Order-1/events?from=0", "", 400, "invalid_request", "from"},
		{"a negative from", "GET", "/v1/streams/Order-1/events?from=-5", "", 400, "invalid_request", "from"},
		{"an unknown direction", "GET", "/v1/streams/Order-1/events?direction=sideways", "", 400, "invalid_request", "direction"},
		{"a garbage position token", "GET", "/v1/events?after=zzz!", "", 400, "invalid_request", "position token"},
		{"a category's token for all events", "GET", "/v1/events?after=" + categoryCursor(t, a), "", 400, "invalid_request", "position token"},
		{"an invalid category", "GET", "/v1/categories/Or-der/events", "", 400, "invalid_stream_id", "category"},
		{"a stream that does not exist", "GET", "/v1/streams/Order-none/events", "", 404, "stream_not_found", "Order-none"},
		{"an unknown route", "GET", "/v2/events", "", 404, "not_found", "/v2/events"},
		{"a method the route does not have", "DELETE", "/v1/streams/Order-1/events", "", 405, "method_not_allowed", "DELETE"},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d malformed requests", len(tests))
	}
	before := a.countAll()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(tt.method, tt.path, tt.body, "Content-Type", "application/json")
			e := r.errorOf()
			if r.status != tt.status || e.Code != tt.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, r.status, truncate(string(r.body), 300), tt.status, tt.code)
			}
			if !strings.Contains(e.Message, tt.mentions) {
				t.Errorf("message %q does not mention %q", e.Message, tt.mentions)
			}
			if e.RequestID == "" || e.RequestID != r.header.Get("X-Request-Id") {
				t.Errorf("error request id %q, header %q", e.RequestID, r.header.Get("X-Request-Id"))
			}
		})
	}
	if after := a.countAll(); after != before {
		t.Errorf("the store held %d events before the bad requests and %d after", before, after)
	}
}

func categoryCursor(t *testing.T, a *api) string {
	var page struct{ Next string }
	a.do("GET", "/v1/categories/Order/events", "").decode(t, &page)
	return page.Next
}

func TestErrorBodiesCarryTheirDetails(t *testing.T) {
	a := newAPI(t, Options{})
	a.do("POST", "/v1/streams/Order-1/events", appendBody(0, orderCreated))
	r := a.do("POST", "/v1/streams/Order-1/events", appendBody(0, itemAdded))
	e := r.errorOf()
	if e.Expected == nil || *e.Expected != 0 || e.Actual == nil || *e.Actual != 1 {
		t.Errorf("wrong_expected_version body = %s, want expected 0 and actual 1", r.body)
	}
	r = a.do("POST", "/v1/streams/Order-1/events", appendBody(1, itemAdded, strings.Replace(itemAdded, "15.99", "1.001", 1)))
	e = r.errorOf()
	if e.Code != "schema_violation" || e.Path != "price" || e.Event == nil || *e.Event != 1 {
		t.Errorf("schema_violation body = %s, want path price of event 1", r.body)
	}
}
