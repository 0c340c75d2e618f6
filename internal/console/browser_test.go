package console_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/strata-events/strata/internal/browsertest"
	"github.com/strata-events/strata/internal/console"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/writertest"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

const (
	readerToken = "console-reader-token-0001"
	adminToken  = "console-admin-token-00001"
)

// adminPost posts body to url as an admin and fails the test unless the
// answer has status want.
func adminPost(t *testing.T, url, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != want {
		t.Fatalf("POST %s: %s, want %d", url, res.Status, want)
	}
}

func appendEvents(t *testing.T, url, stream string, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		adminPost(t, url+"/v1/streams/"+stream+"/events", body, http.StatusCreated)
	}
}

const seedStream = "Order-a1b2c3d4"

func seed(t *testing.T, url string) {
	appendEvents(t, url, seedStream,
		`{"expectedVersion": 0, "events": [{"type": "OrderCreated", "data": {"orderId": "a1b2c3d4", "customerId": "user123", "timestamp": "2023-10-27T10:00:00Z"}, "metadata": {"correlationId": "c-1"}}]}`,
		`{"expectedVersion": 1, "events": [{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4", "itemId": "widget-x", "quantity": 2, "price": "15.99", "timestamp": "2023-10-27T10:01:30Z"}}]}`,
		`{"expectedVersion": 2, "events": [{"type": "OrderShipped", "data": {"orderId": "a1b2c3d4", "shippingAddress": "12 Harbour Road, Dover", "timestamp": "2023-10-27T10:05:00Z"}, "metadata": {"dataSubject": "user123"}}]}`)
}

func TestTheConsoleInABrowser(t *testing.T) {
	w := writertest.Start(t, httpapi.Options{
		Console: console.Handler(),
		Tokens: []httpapi.Token{
			{Secret: readerToken, Role: httpapi.RoleReader, Principal: "console-reader"},
			{Secret: adminToken, Role: httpapi.RoleAdmin, Principal: "console-admin"},
		},
	})
	seed(t, w.URL)
	b := browsertest.New(t)

	t.Run("without a token a page says so and asks for one", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/events")
		if got := b.Text("main .error"); !strings.Contains(got, "Token needed") {
			t.Errorf("the events page without a token says %q, want it to ask for a token", got)
		}
	})

	t.Run("a token entered once is used by every page", func(t *testing.T) {
		b.T = t
		b.Run("enter the token",
			chromedp.Click(chromedp.CSS("#token-button")),
			chromedp.WaitVisible(chromedp.CSS("#token-input")),
			chromedp.SendKeys(chromedp.CSS("#token-input"), adminToken),
			chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS("main table")))
		if got := b.Text("#token-button"); got != "Token: set" {
			t.Errorf("the token button says %q after a token was entered", got)
		}
	})

	t.Run("the overview", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/")
		got := b.Text("main .cards")
		for _, want := range []string{"Store\nready", "Events\n3", "Streams\n1", "Categories\n1\nOrder", "5 subjects"} {
			if !strings.Contains(got, want) {
				t.Errorf("the overview shows %q, want it to contain %q", got, want)
			}
		}
		b.Run("the live tail connects", chromedp.WaitVisible(chromedp.CSS(`#tail-state`)))
		appendEvents(t, w.URL, "Order-live1",
			`{"events": [{"type": "OrderCreated", "data": {"orderId": "live1", "customerId": "user9", "timestamp": "2023-10-27T12:00:00Z"}}]}`)
		b.Run("the appended event reaches the live tail", chromedp.WaitVisible(chromedp.CSS(`#tail li`)))
		if got := b.Text("#tail"); !strings.Contains(got, "Order-live1 OrderCreated · version 1") || strings.Contains(got, seedStream) {
			t.Errorf("the live tail shows %q, want only the event appended after the page opened", got)
		}
		b.Screenshot("overview")
	})

	t.Run("all events and a category, filtered by type", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/events")
		if got := b.Text("main tbody"); strings.Count(got, seedStream) != 3 || !strings.Contains(got, "Order-live1") {
			t.Errorf("$all lists %q, want the seed order's three events and the live one", got)
		}
		b.Screenshot("events")
		b.Open(w.URL + "/console/categories/Order?types=OrderShipped")
		if got := b.Text("main tbody"); !strings.Contains(got, "OrderShipped") || strings.Contains(got, "OrderCreated") {
			t.Errorf("the Order category filtered to OrderShipped lists %q", got)
		}
		b.Run("follow live", chromedp.Click(chromedp.CSS("#live")))
		appendEvents(t, w.URL, "Order-live3", // not of the type followed: it must not show
			`{"events": [{"type": "OrderCreated", "data": {"orderId": "live3", "customerId": "user9", "timestamp": "2023-10-27T12:00:00Z"}}]}`)
		appendEvents(t, w.URL, "Order-live2",
			`{"events": [{"type": "OrderCreated", "data": {"orderId": "live2", "customerId": "user9", "timestamp": "2023-10-27T12:00:00Z"}}]}`,
			`{"expectedVersion": 1, "events": [{"type": "OrderShipped", "data": {"orderId": "live2", "shippingAddress": "1 Quay Street", "timestamp": "2023-10-27T12:01:00Z"}, "metadata": {"dataSubject": "c-live"}}]}`)
		deadline := time.Now().Add(20 * time.Second)
		for !browsertest.Evaluate[bool](b, `document.querySelector("main tbody").innerText.includes("Order-live2")`) {
			if time.Now().After(deadline) {
				t.Fatalf("the followed category never showed Order-live2's OrderShipped; it shows %q", b.Text("main tbody"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := b.Text("main tbody"); strings.Contains(got, "Order-live3") || strings.Contains(got, "OrderCreated") {
			t.Errorf("the category followed for OrderShipped shows %q", got)
		}
	})

	t.Run("the stream page shows the seed order's three events decoded", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/streams/" + seedStream)
		if n := browsertest.Evaluate[int](b, `document.querySelectorAll("article.event").length`); n != 3 {
			t.Fatalf("the stream page shows %d events, want 3", n)
		}
		for sel, want := range map[string]string{
			"#v1 pre.data":  `"customerId": "user123"`,
			"#v2 pre.data":  `"price": "15.99"`,
			"#v3 pre.data":  `"shippingAddress": "12 Harbour Road, Dover"`,
			"#v1 dl":        `"correlationId": "c-1"`,
			"#v1 dd.schema": "example.orders.OrderCreated version 1",
		} {
			if got := b.Text(sel); !strings.Contains(got, want) {
				t.Errorf("%s shows %q, want it to contain %s", sel, got, want)
			}
		}
		b.Screenshot("stream")
	})

	t.Run("an event written with an earlier schema version is shown upcast", func(t *testing.T) {
		b.T = t
		v1, err := os.ReadFile(filepath.Join(writertest.SchemasDir(), "OrderShipped.avsc"))
		if err != nil {
			t.Fatal(err)
		}
		v2 := strings.Replace(string(v1), `"fields": [`, `"fields": [{"name": "carrier", "type": "string", "default": "unknown"},`, 1)
		body, _ := json.Marshal(map[string]string{"schema": v2})
		adminPost(t, w.URL+"/registry/subjects/example.orders.OrderShipped/versions", string(body), http.StatusOK)
		b.Open(w.URL + "/console/streams/" + seedStream)
		if got := b.Text("#v3 dd.schema"); !strings.Contains(got, "example.orders.OrderShipped version 1") || !strings.Contains(got, "shown upcast to version 2") {
			t.Errorf("the OrderShipped event, written with v1 of 2, says %q", got)
		}
		if got := b.Text("#v3 pre.data"); !strings.Contains(got, `"carrier": "unknown"`) {
			t.Errorf("the OrderShipped event upcast to v2 shows %q, want the new field's default", got)
		}
		if got := b.Text("#v1 dd.schema"); strings.Contains(got, "upcast") {
			t.Errorf("the OrderCreated event, written with its latest schema, says %q", got)
		}
	})

	t.Run("the append form shows a schema violation's path, then appends", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/streams/" + seedStream)
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("append bad data",
			chromedp.SendKeys(chromedp.CSS(`input[name="type"]`), "OrderItemAdded"),
			chromedp.SetValue(chromedp.CSS(`textarea[name="data"]`), `{"orderId": "a1b2c3d4", "itemId": "bolt", "quantity": "three", "price": "0.25", "timestamp": "2023-10-27T10:06:00Z"}`),
			chromedp.Click(chromedp.CSS(`form[aria-labelledby="append-title"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[aria-labelledby="append-title"] .error`)))
		got := b.Text(`form[aria-labelledby="append-title"] .error`)
		if !strings.Contains(got, "schema_violation") || !strings.Contains(got, "quantity") {
			t.Errorf("the append form shows %q, want a schema_violation naming the field quantity", got)
		}
		b.Run("append good data",
			chromedp.SetValue(chromedp.CSS(`textarea[name="data"]`), `{"orderId": "a1b2c3d4", "itemId": "bolt", "quantity": 3, "price": "0.25", "timestamp": "2023-10-27T10:06:00Z"}`),
			chromedp.Click(chromedp.CSS(`form[aria-labelledby="append-title"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[aria-labelledby="append-title"] .ok`)))
		if got := b.Text(`form[aria-labelledby="append-title"] .ok`); !strings.Contains(got, "version 4") {
			t.Errorf("the append form says %q, want version 4", got)
		}
		b.Run("append at a version passed",
			chromedp.Click(chromedp.CSS(`form[aria-labelledby="append-title"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[aria-labelledby="append-title"] .error`)))
		if got := b.Text(`form[aria-labelledby="append-title"] .error`); !strings.Contains(got, "wrong_expected_version") ||
			!strings.Contains(got, "Expected version\n3") || !strings.Contains(got, "Actual version\n4") {
			t.Errorf("a second append at version 3 shows %q, want wrong_expected_version, expected 3, actual 4", got)
		}
	})

	t.Run("the schema check gives the registry's verdict", func(t *testing.T) {
		b.T = t
		subject := "example.orders.OrderShipped"
		b.Open(w.URL + "/console/schemas/" + subject)
		b.Screenshot("schema")
		compatible, err := os.ReadFile(filepath.Join(writertest.SchemasDir(), "OrderShipped.avsc"))
		if err != nil {
			t.Fatal(err)
		}
		incompatible := strings.Replace(string(compatible), `"fields": [`,
			`"fields": [{"name": "carrier", "type": "string"},`, 1) // a new field without a default
		for _, c := range []struct {
			name, schema, sel, want string
		}{
			{"compatible", string(compatible), ".ok", "Compatible"},
			{"incompatible", incompatible, ".error", "carrier"},
		} {
			b.Run("check the "+c.name+" schema",
				chromedp.SetValue(chromedp.CSS(`textarea[name="schema"]`), c.schema),
				chromedp.Click(chromedp.CSS(`form[aria-labelledby="check-title"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`form[aria-labelledby="check-title"] `+c.sel)))
			if got := b.Text(`form[aria-labelledby="check-title"] ` + c.sel); !strings.Contains(got, c.want) {
				t.Errorf("checking the %s schema shows %q, want it to contain %q", c.name, got, c.want)
			}
		}
		b.Open(w.URL + "/console/schemas/example.orders.OrderItemAdded?version=2&against=1")
		if got := b.Text("pre.diff"); !strings.Contains(got, "+ ") {
			t.Errorf("the differences between OrderItemAdded v1 and v2 show %q, want added lines", got)
		}
	})

	t.Run("a stream's retention is set from its page", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/streams/" + seedStream)
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("set the retention", chromedp.SendKeys(chromedp.CSS(`#settings input[name="maxCount"]`), "2"),
			chromedp.Click(chromedp.CSS(`#settings button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#settings-outcome .ok")))
		if got := b.Text("#settings-outcome"); !strings.Contains(got, "keep the last 2 versions") {
			t.Errorf("setting the retention says %q", got)
		}
		b.Open(w.URL + "/console/streams/" + seedStream)
		if n := browsertest.Evaluate[int](b, `document.querySelectorAll("article.event").length`); n != 2 {
			t.Errorf("with the last 2 versions kept the stream page shows %d events", n)
		}
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("remove the retention", chromedp.Click(chromedp.CSS(`#settings button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#settings-outcome .ok")))
		if got := b.Text("#settings-outcome"); !strings.Contains(got, "keep everything") {
			t.Errorf("removing the retention says %q", got)
		}
	})

	t.Run("a stream is deleted from its page", func(t *testing.T) {
		b.T = t
		b.Open(w.URL + "/console/streams/Order-live1")
		browsertest.Evaluate[bool](b, `window.confirm = () => true; true`)
		b.Run("delete", chromedp.Click(chromedp.CSS("#delete")), chromedp.WaitVisible(chromedp.CSS("#delete-outcome .ok")))
		if got := b.Text("#delete-outcome"); !strings.Contains(got, "Order-live1 deleted: $StreamDeleted is version 2") {
			t.Errorf("deleting says %q", got)
		}
		b.Open(w.URL + "/console/streams/Order-live1")
		if got := b.Text("main"); !strings.Contains(got, "stream Order-live1 was deleted at version 2 and has no event since") {
			t.Errorf("the deleted stream's page says %q", got)
		}
	})

	t.Run("at 390 px wide nothing overflows the page", func(t *testing.T) {
		b.T = t
		for name, page := range map[string]string{
			"overview": "/console/", "events": "/console/events",
			"stream": "/console/streams/" + seedStream, "schema": "/console/schemas/example.orders.OrderShipped",
		} {
			b.Run("narrow "+page, chromedp.EmulateViewport(390, 844))
			b.Open(w.URL + page)
			if browsertest.Evaluate[bool](b, `document.documentElement.scrollWidth > window.innerWidth`) {
				t.Errorf("%s is wider than a 390 px screen", page)
			}
			b.Screenshot(name + "-390px")
		}
		b.Run("wide again", chromedp.EmulateViewport(1280, 900))
	})
	t.Logf("screenshots in %s", b.Dir)
}
