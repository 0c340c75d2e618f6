package readapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

var ctx = context.Background()

// openPool returns a pool on url whose search_path is schema.
func openPool(t *testing.T, url, schema string) *pgxpool.Pool {
	t.Helper()
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
	return pool
}

// shippedItemsSetup returns the setup section of the declarative
// shipped_items projection: the lines after "-- strata:setup" up to the
// next "-- strata:" directive.
func shippedItemsSetup(t *testing.T) string {
	t.Helper()
	f, err := os.Open("../../projections/shipped_items.sql")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var setup []string
	in := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if directive, ok := strings.CutPrefix(strings.TrimSpace(line), "-- strata:"); ok {
			if in {
				break
			}
			in = strings.TrimSpace(directive) == "setup"
			continue
		}
		if in {
			setup = append(setup, line)
		}
	}
	if len(setup) == 0 {
		t.Fatal("shipped_items.sql has no -- strata:setup section")
	}
	return strings.Join(setup, "\n")
}

// readModel returns a pool on a fresh schema holding order_summary's and
// shipped_items' tables, filled with testOrders and testShipped.
func readModel(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url, schema := harness.NewSchema(t)
	pool := openPool(t, url, schema)
	for _, sql := range []string{orders.SummaryProjection().Setup, shippedItemsSetup(t)} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	apply := orders.SummaryProjection().Apply
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return apply(ctx, tx, testOrders(t)) }); err != nil {
		t.Fatalf("apply the orders: %v", err)
	}
	for _, s := range testShipped {
		if _, err := pool.Exec(ctx, `INSERT INTO shipped_items (order_id, item_id, quantity, shipping_address, shipped_at)
			VALUES ($1, $2, $3, $4, $5)`, s.OrderID, s.ItemID, s.Quantity, s.ShippingAddress, s.ShippedAt); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

var t0 = time.Date(2023, 10, 27, 10, 0, 0, 0, time.UTC)

// testOrders are the events of five orders: a1 shipped with two items
// (one of them a v1 event without currency), b2 open in EUR, c3 open and
// empty, d4 and e5 shipped. Event i happens at t0 + i minutes.
func testOrders(t *testing.T) []projection.Event {
	t.Helper()
	type ev struct {
		typ, order string
		data       map[string]any
	}
	price := func(s string) avro.Decimal {
		d, err := avro.ParseDecimal(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	list := []ev{
		{"OrderCreated", "a1", map[string]any{"customerId": "user1"}},
		{"OrderItemAdded", "a1", map[string]any{"itemId": "widget-x", "quantity": int32(3), "price": price("19.99")}},
		{"OrderItemAdded", "a1", map[string]any{"itemId": "gadget", "quantity": int32(1), "price": price("0.01"), "currency": "USD"}},
		{"OrderShipped", "a1", map[string]any{"shippingAddress": "123 Main St, Anytown, USA"}},
		{"OrderCreated", "b2", map[string]any{"customerId": "user2"}},
		{"OrderItemAdded", "b2", map[string]any{"itemId": "bolt", "quantity": int32(10), "price": price("0.10"), "currency": "EUR"}},
		{"OrderCreated", "c3", map[string]any{"customerId": "user1"}},
		{"OrderCreated", "d4", map[string]any{"customerId": "user3"}},
		{"OrderItemAdded", "d4", map[string]any{"itemId": "bolt", "quantity": int32(1), "price": price("0.10")}},
		{"OrderShipped", "d4", map[string]any{"shippingAddress": "9 Rue de la Paix, Paris"}},
		{"OrderCreated", "e5", map[string]any{"customerId": "user1"}},
		{"OrderShipped", "e5", map[string]any{"shippingAddress": "1 Main Road, Springfield"}},
	}
	versions := map[string]int64{}
	out := make([]projection.Event, len(list))
	for i, e := range list {
		stream := "Order-" + e.order
		versions[stream]++
		e.data["orderId"] = e.order
		e.data["timestamp"] = t0.Add(time.Duration(i) * time.Minute)
		out[i] = projection.Event{ID: fmt.Sprint(i), StreamID: stream, Category: "Order", Type: e.typ, Version: versions[stream], Data: e.data}
	}
	return out
}

// testShipped are shipped_items' rows for the shipped orders.
var testShipped = []ShippedItem{
	{OrderID: "a1", ItemID: "widget-x", Quantity: 3, ShippingAddress: "123 Main St, Anytown, USA", ShippedAt: t0.Add(3 * time.Minute)},
	{OrderID: "a1", ItemID: "gadget", Quantity: 1, ShippingAddress: "123 Main St, Anytown, USA", ShippedAt: t0.Add(3 * time.Minute)},
	{OrderID: "d4", ItemID: "bolt", Quantity: 1, ShippingAddress: "9 Rue de la Paix, Paris", ShippedAt: t0.Add(9 * time.Minute)},
}

var orderA1 = Order{
	OrderID: "a1", CustomerID: "user1", Status: "shipped",
	Items: []OrderItem{
		{ItemID: "gadget", Quantity: 1, Price: "0.01", Currency: "USD"},
		{ItemID: "widget-x", Quantity: 3, Price: "19.99", Currency: "USD"},
	},
	ItemCount: 4, Total: "59.98", ShippingAddress: "123 Main St, Anytown, USA",
	CreatedAt: t0, ShippedAt: t0.Add(3 * time.Minute), Version: 4,
}

// fakeProjections answers Statuses with its fields.
type fakeProjections struct {
	statuses []runner.Status
	err      error
}

func (f *fakeProjections) Statuses(context.Context) ([]runner.Status, error) {
	return f.statuses, f.err
}

// server serves an API over pool behind real HTTP.
type server struct {
	t   *testing.T
	url string
}

func newServer(t *testing.T, pool *pgxpool.Pool, projections Projections, opts Options) *server {
	t.Helper()
	srv := httptest.NewServer(New(pool, projections, opts).Handler())
	t.Cleanup(srv.Close)
	return &server{t: t, url: srv.URL}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody is the error object of a response.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

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
func (s *server) do(method, path string, headers ...string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// get sends GET path and wants 200.
func (s *server) get(path string, v any, headers ...string) response {
	s.t.Helper()
	r := s.do("GET", path, headers...)
	if r.status != http.StatusOK {
		s.t.Fatalf("GET %s = %d %s, want 200", path, r.status, r.body)
	}
	if v != nil {
		r.decode(s.t, v)
	}
	return r
}

func TestAnOrderWithItemsAndExactDecimals(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	var got Order
	r := s.get("/v1/orders/a1", &got)
	if diff := cmp.Diff(orderA1, got); diff != "" {
		t.Errorf("GET /v1/orders/a1 (-want +got):\n%s", diff)
	}
	var raw map[string]any
	r.decode(t, &raw)
	if raw["total"] != "59.98" || raw["items"].([]any)[1].(map[string]any)["price"] != "19.99" {
		t.Errorf("decimals are not exact strings: total %#v in %s", raw["total"], r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestAnOpenOrderHasNoShippingFields(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	var raw map[string]any
	s.get("/v1/orders/c3", &raw)
	want := map[string]any{
		"orderId": "c3", "customerId": "user1", "status": "open", "items": []any{}, "itemCount": float64(0),
		"total": "0", "createdAt": "2023-10-27T10:06:00Z", "version": float64(1),
	}
	if diff := cmp.Diff(want, raw); diff != "" {
		t.Errorf("GET /v1/orders/c3 (-want +got):\n%s", diff)
	}
	var b2 Order
	s.get("/v1/orders/b2", &b2)
	if want := []OrderItem{{ItemID: "bolt", Quantity: 10, Price: "0.10", Currency: "EUR"}}; !cmp.Equal(want, b2.Items) {
		t.Errorf("b2's items = %+v, want %+v", b2.Items, want)
	}
}

func TestAnUnknownOrderIsNotFound(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	r := s.do("GET", "/v1/orders/zz9")
	if e := r.errorOf(); r.status != http.StatusNotFound || e.Code != "not_found" || !strings.Contains(e.Message, "zz9") {
		t.Errorf("GET /v1/orders/zz9 = %d %s, want 404 not_found naming the order", r.status, r.body)
	}
}

// orderIDs lists a page's order ids.
func orderIDs(p OrderPage) []string {
	ids := []string{}
	for _, o := range p.Orders {
		ids = append(ids, o.OrderID)
	}
	return ids
}

func TestListingOrdersFiltersAndIncludesItems(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"a1", "b2", "c3", "d4", "e5"}},
		{"?status=open", []string{"b2", "c3"}},
		{"?status=shipped", []string{"a1", "d4", "e5"}},
		{"?customerId=user1", []string{"a1", "c3", "e5"}},
		{"?customerId=user1&status=open", []string{"c3"}},
		{"?customerId=nobody", []string{}},
		{"?after=b2", []string{"c3", "d4", "e5"}},
		{"?after=e5", []string{}},
		{"?status=shipped&after=a1&limit=1", []string{"d4"}},
	} {
		var page OrderPage
		s.get("/v1/orders"+tc.query, &page)
		if diff := cmp.Diff(tc.want, orderIDs(page)); diff != "" {
			t.Errorf("GET /v1/orders%s ids (-want +got):\n%s", tc.query, diff)
		}
	}
	var page OrderPage
	r := s.get("/v1/orders?status=shipped&limit=1", &page)
	if len(page.Orders) != 1 || !cmp.Equal(orderA1, page.Orders[0]) {
		t.Errorf("the listing's order differs from GET /v1/orders/a1: %s", r.body)
	}
	var empty map[string]any
	s.get("/v1/orders?customerId=nobody", &empty)
	if _, ok := empty["next"]; !ok && fmt.Sprint(empty["orders"]) != "[]" {
		t.Errorf("an empty listing = %v, want orders [] and no next", empty)
	}
}

func TestPagingWalksEveryOrderOnce(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	for _, tc := range []struct {
		query string
		want  [][]string
	}{
		{"limit=2", [][]string{{"a1", "b2"}, {"c3", "d4"}, {"e5"}}},
		{"limit=1&status=open", [][]string{{"b2"}, {"c3"}}},
		{"limit=5", [][]string{{"a1", "b2", "c3", "d4", "e5"}}},
		{"limit=3&customerId=user1", [][]string{{"a1", "c3", "e5"}}},
	} {
		var pages [][]string
		after := ""
		for {
			var page OrderPage
			path := "/v1/orders?" + tc.query
			if after != "" {
				path += "&after=" + after
			}
			s.get(path, &page)
			pages = append(pages, orderIDs(page))
			if page.Next == "" {
				break
			}
			if len(pages) > 10 {
				t.Fatalf("%s: paging does not end", tc.query)
			}
			after = page.Next
		}
		if diff := cmp.Diff(tc.want, pages); diff != "" {
			t.Errorf("paging with %s (-want +got):\n%s", tc.query, diff)
		}
	}
}

func TestShippedItemsAreFoundByItemIDOrAddressWords(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	ids := func(p ShippedItemPage) []string {
		out := []string{}
		for _, it := range p.Items {
			out = append(out, it.OrderID+"/"+it.ItemID)
		}
		return out
	}
	for _, tc := range shippedItemsSearches {
		var page ShippedItemPage
		s.get("/v1/shipped-items?q="+urlEscape(tc.q), &page)
		if diff := cmp.Diff(tc.want, ids(page)); diff != "" {
			t.Errorf("q=%q (-want +got):\n%s", tc.q, diff)
		}
	}
	var page ShippedItemPage
	s.get("/v1/shipped-items?q=bolt", &page)
	if diff := cmp.Diff(testShipped[2:], page.Items); diff != "" {
		t.Errorf("q=bolt items (-want +got):\n%s", diff)
	}
	s.get("/v1/shipped-items?q=main&limit=1", &page)
	if len(page.Items) != 1 {
		t.Errorf("q=main&limit=1 gave %d items", len(page.Items))
	}
	s.get("/v1/shipped-items?q=123+Main+St,+Anytown", &page) // the way a form sends spaces
	if len(page.Items) != 2 {
		t.Errorf("q=123 Main St, Anytown gave %d items, want 2", len(page.Items))
	}
}

// shippedItemsSearches are searches of testShipped and the items they
// find, as orderId/itemId.
var shippedItemsSearches = []struct {
	q    string
	want []string
}{
	{"widget-x", []string{"a1/widget-x"}},
	{"bolt", []string{"d4/bolt"}},
	{"Main", []string{"a1/gadget", "a1/widget-x"}},
	{"anytown main", []string{"a1/gadget", "a1/widget-x"}},
	{"paris", []string{"d4/bolt"}},
	{"rue paix", []string{"d4/bolt"}},
	{"main paris", []string{}},
	{"springfield", []string{}}, // e5 shipped no items
	{"widget", []string{"a1/widget-x"}},
	{strings.Repeat("x", MaxTextLength), []string{}},
}

// shippedItemsQueries are the queries projections/shipped_items.sql
// declares.
func shippedItemsQueries(t *testing.T) []*projection.Query {
	t.Helper()
	text, err := os.ReadFile("../../projections/shipped_items.sql")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := projection.ParseSQL("shipped_items.sql", text)
	if err != nil {
		t.Fatal(err)
	}
	return sp.Queries()
}

// The search shipped_items.sql declares finds what /v1/shipped-items
// finds, in the same order, with the same values.
func TestTheDeclaredSearchAnswersAsTheShippedItemsRoute(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{Queries: shippedItemsQueries(t)})
	type row struct {
		OrderID         string    `json:"order_id"`
		ItemID          string    `json:"item_id"`
		Quantity        int64     `json:"quantity"`
		ShippingAddress string    `json:"shipping_address"`
		ShippedAt       time.Time `json:"shipped_at"`
	}
	search := func(query string) []ShippedItem {
		var answer struct{ Rows []row }
		s.get("/v1/projections/shipped_items/queries/search?"+query, &answer)
		items := []ShippedItem{}
		for _, r := range answer.Rows {
			items = append(items, ShippedItem(r))
		}
		return items
	}
	for _, tc := range shippedItemsSearches {
		for _, query := range []string{"q=" + urlEscape(tc.q), "q=" + urlEscape(tc.q) + "&limit=1"} {
			var page ShippedItemPage
			s.get("/v1/shipped-items?"+query, &page)
			if diff := cmp.Diff(page.Items, search(query)); diff != "" {
				t.Errorf("%s: the declared search (-route +query):\n%s", query, diff)
			}
		}
	}
}

func urlEscape(s string) string { return strings.ReplaceAll(s, " ", "%20") }

func TestProjectionsListsTheStatuses(t *testing.T) {
	rate := 1500.5
	fake := &fakeProjections{statuses: []runner.Status{{
		Name: "order_summary", State: runner.StateRunning, Generation: 1, Policy: "halt", Lag: 3, EventsPerSecond: &rate, Applied: 40,
		Partitions: []runner.PartitionStatus{{Topic: "events.Order", Partition: 0, Offset: 10, End: 13, Lag: 3}},
	}, {
		Name: "shipped_items", State: runner.StateHalted, Policy: "park", Partitions: []runner.PartitionStatus{},
		Halted: &runner.Halt{Error: "boom", At: t0, Topic: "events.Order", Offset: 7, StreamID: "Order-a1", Version: 2, Type: "OrderShipped"},
	}}}
	s := newServer(t, nil, fake, Options{})
	var page ProjectionsPage
	s.get("/v1/projections", &page)
	if diff := cmp.Diff(fake.statuses, page.Projections); diff != "" {
		t.Errorf("GET /v1/projections (-want +got):\n%s", diff)
	}

	fake.statuses = nil
	r := s.get("/v1/projections", nil)
	if got := strings.TrimSpace(string(r.body)); got != `{"projections":[]}` {
		t.Errorf("no projections = %s, want an empty list", got)
	}
	if r := newServer(t, nil, nil, Options{}).get("/v1/projections", nil); strings.TrimSpace(string(r.body)) != `{"projections":[]}` {
		t.Errorf("without Projections = %s, want an empty list", r.body)
	}

	fake.err = errors.New("kafka is down")
	r = s.do("GET", "/v1/projections")
	if e := r.errorOf(); r.status != http.StatusServiceUnavailable || e.Code != "unavailable" {
		t.Errorf("a failing Statuses = %d %s, want 503 unavailable", r.status, r.body)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	var notReady error
	s := newServer(t, readModel(t), nil, Options{Ready: func(context.Context) error { return notReady }})
	if r := s.get("/healthz", nil); strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Errorf("healthz = %s", r.body)
	}
	s.get("/readyz", nil)
	notReady = errors.New("no partitions yet")
	if r := s.do("GET", "/readyz"); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "no partitions yet") {
		t.Errorf("readyz while not ready = %d %s, want 503 saying why", r.status, r.body)
	}
	s.get("/v1/orders/a1", nil)
	s.do("GET", "/v1/orders/nope")
	s.get("/v1/orders", nil)
	r := s.get("/metrics", nil)
	for _, want := range []string{
		`strata_http_requests_total{code="200",method="GET",route="order"} 1`,
		`strata_http_requests_total{code="404",method="GET",route="order"} 1`,
		`strata_http_requests_total{code="200",method="GET",route="orders"} 1`,
		`strata_http_requests_total{code="503",method="GET",route="readyz"} 1`,
		`strata_http_request_duration_seconds_count{route="order"} 2`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestTokensGuardTheV1Routes(t *testing.T) {
	const reader, writer, admin = "reader-token-0123456789", "writer-token-0123456789", "admin-token-01234567890"
	s := newServer(t, readModel(t), &fakeProjections{}, Options{Tokens: []httpapi.Token{
		{Secret: reader, Role: httpapi.RoleReader}, {Secret: writer, Role: httpapi.RoleWriter}, {Secret: admin, Role: httpapi.RoleAdmin},
	}, Queries: shippedItemsQueries(t)})
	routes := []struct {
		path string
		open bool
	}{
		{"/v1/orders/a1", false},
		{"/v1/orders?status=open", false},
		{"/v1/shipped-items?q=bolt", false},
		{"/v1/projections", false},
		{"/v1/projections/shipped_items/queries/search?q=bolt", false},
		{"/healthz", true},
		{"/readyz", true},
		{"/metrics", true},
	}
	callers := []struct {
		name   string
		header []string
		valid  bool
	}{
		{"no token", nil, false},
		{"a malformed header", []string{"Authorization", "Token " + reader}, false},
		{"a wrong token", []string{"Authorization", "Bearer not-a-token-at-all"}, false},
		{"a reader", []string{"Authorization", "Bearer " + reader}, true},
		{"a writer", []string{"Authorization", "bearer " + writer}, true},
		{"an admin", []string{"Authorization", "Bearer " + admin}, true},
	}
	for _, route := range routes {
		for _, c := range callers {
			t.Run(route.path+" by "+c.name, func(t *testing.T) {
				s.t = t
				r := s.do("GET", route.path, c.header...)
				switch {
				case route.open || c.valid:
					if r.status != http.StatusOK {
						t.Errorf("= %d %s, want 200", r.status, r.body)
					}
				case r.status != http.StatusUnauthorized || r.errorOf().Code != "unauthenticated" || r.header.Get("WWW-Authenticate") == "":
					t.Errorf("= %d %s, want 401 unauthenticated with WWW-Authenticate", r.status, r.body)
				}
			})
		}
	}
}

func TestBadRequestsAreRefusedWithTheRightCode(t *testing.T) {
	s := newServer(t, readModel(t), nil, Options{})
	long := strings.Repeat("a", 201)
	for _, tc := range []struct {
		name, method, path string
		status             int
		code, mentions     string
	}{
		{"a status that is not open or shipped", "GET", "/v1/orders?status=closed", 400, "invalid_request", "status"},
		{"a status in capitals", "GET", "/v1/orders?status=OPEN", 400, "invalid_request", "status"},
		{"a limit of 0", "GET", "/v1/orders?limit=0", 400, "invalid_request", "limit"},
		{"a negative limit", "GET", "/v1/orders?limit=-1", 400, "invalid_request", "limit"},
		{"a limit over 1000", "GET", "/v1/orders?limit=1001", 400, "invalid_request", "limit"},
		{"a limit that is not a number", "GET", "/v1/orders?limit=abc", 400, "invalid_request", "limit"},
		{"a fractional limit", "GET", "/v1/orders?limit=1.5", 400, "invalid_request", "limit"},
		{"a limit given twice", "GET", "/v1/orders?limit=1&limit=2", 400, "invalid_request", "limit"},
		{"an after that is not an order id", "GET", "/v1/orders?after=a%20b", 400, "invalid_request", "after"},
		{"an after of 201 characters", "GET", "/v1/orders?after=" + long, 400, "invalid_request", "after"},
		{"a customerId of 201 characters", "GET", "/v1/orders?customerId=" + long, 400, "invalid_request", "customerId"},
		{"a customerId that is not UTF-8", "GET", "/v1/orders?customerId=%FF", 400, "invalid_request", "customerId"},
		{"an order id that is not one", "GET", "/v1/orders/bad%20id", 400, "invalid_request", "orderId"},
		{"an order id of 201 characters", "GET", "/v1/orders/" + long, 400, "invalid_request", "orderId"},
		{"a search without q", "GET", "/v1/shipped-items", 400, "invalid_request", "q"},
		{"an empty q", "GET", "/v1/shipped-items?q=", 400, "invalid_request", "q"},
		{"a q of spaces", "GET", "/v1/shipped-items?q=%20%20", 400, "invalid_request", "q"},
		{"a q of 201 characters", "GET", "/v1/shipped-items?q=" + long, 400, "invalid_request", "q"},
		{"a q with NUL", "GET", "/v1/shipped-items?q=a%00b", 400, "invalid_request", "q"},
		{"q given twice", "GET", "/v1/shipped-items?q=a&q=b", 400, "invalid_request", "q"},
		{"a search limit of 0", "GET", "/v1/shipped-items?q=bolt&limit=0", 400, "invalid_request", "limit"},
		{"an unknown route", "GET", "/v1/customers", 404, "not_found", "/v1/customers"},
		{"an unknown version", "GET", "/v2/orders", 404, "not_found", "/v2/orders"},
		{"a path below an order", "GET", "/v1/orders/a1/items", 404, "not_found", "/v1/orders/a1/items"},
		{"a POST of orders", "POST", "/v1/orders", 405, "method_not_allowed", "POST"},
		{"a DELETE of an order", "DELETE", "/v1/orders/a1", 405, "method_not_allowed", "DELETE"},
		{"a PUT of the search", "PUT", "/v1/shipped-items?q=bolt", 405, "method_not_allowed", "PUT"},
		{"a POST of projections", "POST", "/v1/projections", 405, "method_not_allowed", "POST"},
		{"a POST of health", "POST", "/healthz", 405, "method_not_allowed", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.t = t
			r := s.do(tc.method, tc.path)
			e := r.errorOf()
			if r.status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.mentions) || e.RequestID == "" {
				t.Errorf("%s %s = %d %s; want %d %s mentioning %q, with a request id", tc.method, tc.path, r.status, r.body, tc.status, tc.code, tc.mentions)
			}
			if tc.status == 405 && r.header.Get("Allow") != "GET" {
				t.Errorf("Allow = %q, want GET", r.header.Get("Allow"))
			}
		})
	}
	// The bounds themselves are accepted.
	s.t = t
	s.get("/v1/orders?limit=1000", nil)
	s.get("/v1/orders?limit=1", nil)
	s.get("/v1/orders?after="+strings.Repeat("a", 200), nil)
	s.get("/v1/orders?status=", nil)
}

// The read model's database failing must answer 503 unavailable, promptly.
func TestAnUnreachableDatabaseIsUnavailable(t *testing.T) {
	refused := closedPort(t)
	silent := silentServer(t)
	url, schema := harness.NewSchema(t)
	for _, tc := range []struct {
		name     string
		pool     *pgxpool.Pool
		mentions string
	}{
		{"a refused connection", openPool(t, "postgres://strata@"+refused+"/strata?sslmode=disable", "readmodel"), "cannot be reached"},
		{"a server that never answers", openPool(t, "postgres://strata@"+silent+"/strata?sslmode=disable", "readmodel"), "did not answer within 300ms"},
		{"a database without the tables", openPool(t, url, schema), "not set up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.pool, nil, Options{Timeout: 300 * time.Millisecond})
			for _, path := range []string{"/v1/orders/a1", "/v1/orders", "/v1/shipped-items?q=bolt"} {
				start := time.Now()
				r := s.do("GET", path)
				elapsed := time.Since(start)
				if e := r.errorOf(); r.status != http.StatusServiceUnavailable || e.Code != "unavailable" || !strings.Contains(e.Message, tc.mentions) {
					t.Errorf("GET %s = %d %s, want 503 unavailable saying %q", path, r.status, r.body, tc.mentions)
				}
				if elapsed > 3*time.Second {
					t.Errorf("GET %s took %s; the timeout is 300ms", path, elapsed)
				}
			}
		})
	}
}

// A read model that does not scan is a bug: 500 internal, with nothing of
// the cause shown.
func TestABrokenReadModelIsAnInternalError(t *testing.T) {
	url, schema := harness.NewSchema(t)
	pool := openPool(t, url, schema)
	if _, err := pool.Exec(ctx, `
		CREATE TABLE order_summary (order_id text, customer_id text, status text, item_count text, total numeric,
			shipping_address text, created_at timestamptz, shipped_at timestamptz, version bigint);
		CREATE TABLE order_summary_items (order_id text, item_id text, quantity bigint, price numeric, currency text);
		INSERT INTO order_summary VALUES ('a1', 'u', 'open', 'secret-value', 0, NULL, NULL, NULL, 1)`); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, pool, nil, Options{})
	r := s.do("GET", "/v1/orders/a1")
	if e := r.errorOf(); r.status != http.StatusInternalServerError || e.Code != "internal" || strings.Contains(string(r.body), "secret") {
		t.Errorf("GET /v1/orders/a1 = %d %s, want 500 internal without the cause", r.status, r.body)
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer returns the address of a server that accepts connections
// and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}
