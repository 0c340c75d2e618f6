package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/client"
)

// recorded is a request as a stub writer saw it.
type recorded struct {
	Method, Path, Query, Authorization, ContentType string
	Body                                            map[string]any
}

// requests are the requests a stub saw.
type requests struct {
	mu   sync.Mutex
	reqs []recorded
}

func (r *requests) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// stub is a writer that records each request and answers status and body.
func stub(t *testing.T, status int, body string, header ...string) (*client.Client, *requests) {
	t.Helper()
	reqs := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &rec.Body); err != nil {
				t.Errorf("request body %s: %v", b, err)
			}
		}
		reqs.mu.Lock()
		reqs.reqs = append(reqs.reqs, rec)
		reqs.mu.Unlock()
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL+"/base/", client.Options{Token: "tok-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	return c, reqs
}

func TestAppendSendsTheContractsBody(t *testing.T) {
	c, reqs := stub(t, http.StatusCreated, `{"streamId": "Order-a:b@c", "firstVersion": 4, "lastVersion": 5,
		"events": [{"id": "id-1", "version": 4, "globalPosition": 40}, {"id": "id-2", "version": 5, "globalPosition": 41}],
		"position": "pos-41"}`)
	res, err := c.Append(ctx, "Order-a:b@c", 3, []client.Event{
		{ID: "id-1", Type: "OrderItemAdded", Data: json.RawMessage(`{"price": 15.99}`),
			Metadata: client.Metadata{CorrelationID: "c-1", Custom: map[string]string{"source": "web"}}},
		{Type: "OrderShipped", Data: struct {
			Address string `json:"shippingAddress"`
		}{"1 Main St"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := recorded{Method: "POST", Path: "/base/v1/streams/Order-a:b@c/events", Authorization: "Bearer tok-0123456789abcdef",
		ContentType: "application/json", Body: map[string]any{
			"expectedVersion": 3.0,
			"events": []any{
				map[string]any{"id": "id-1", "type": "OrderItemAdded", "data": map[string]any{"price": 15.99},
					"metadata": map[string]any{"correlationId": "c-1", "custom": map[string]any{"source": "web"}}},
				map[string]any{"type": "OrderShipped", "data": map[string]any{"shippingAddress": "1 Main St"}},
			},
		}}
	if diff := cmp.Diff([]recorded{want}, reqs.all()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	wantRes := client.AppendResult{StreamID: "Order-a:b@c", FirstVersion: 4, LastVersion: 5, Events: []client.AppendedEvent{
		{ID: "id-1", Version: 4, GlobalPosition: 40}, {ID: "id-2", Version: 5, GlobalPosition: 41}}, Position: "pos-41"}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if got := client.WaitFor(res, client.AppendResult{}, res).Encode(); got != "waitForPosition=pos-41&waitForPosition=pos-41" {
		t.Errorf("WaitFor = %s, want the result's position for each result that appended", got)
	}
}

func TestExpectedVersionsAreSentAsTheirNumbers(t *testing.T) {
	for _, tt := range []struct {
		expected client.ExpectedVersion
		want     float64
	}{{client.Any, -1}, {client.NoStream, 0}, {client.StreamExists, -2}, {7, 7}} {
		c, reqs := stub(t, http.StatusCreated, `{}`)
		if _, err := c.Append(ctx, "Order-1", tt.expected, []client.Event{{Type: "T", Data: map[string]any{}}}); err != nil {
			t.Fatal(err)
		}
		if got := reqs.all()[0].Body["expectedVersion"]; got != tt.want {
			t.Errorf("Append(expected %d) sent expectedVersion %v, want %v", tt.expected, got, tt.want)
		}
	}
}

func TestReadsSendTheirParameters(t *testing.T) {
	tests := []struct {
		name      string
		read      func(c *client.Client) error
		wantPath  string
		wantQuery string
	}{
		{"a stream from a version", func(c *client.Client) error { _, err := c.ReadStream(ctx, "Order-1", 5, 50); return err },
			"/base/v1/streams/Order-1/events", "from=5&limit=50"},
		{"a stream with the defaults", func(c *client.Client) error { _, err := c.ReadStream(ctx, "Order-1", 0, 0); return err },
			"/base/v1/streams/Order-1/events", ""},
		{"a stream backward", func(c *client.Client) error { _, err := c.ReadStreamBackward(ctx, "Order-1", 0, 10); return err },
			"/base/v1/streams/Order-1/events", "direction=backward&limit=10"},
		{"a category after a token", func(c *client.Client) error { _, err := c.ReadCategory(ctx, "Order", "tok/+=", 20); return err },
			"/base/v1/categories/Order/events", "after=tok%2F%2B%3D&limit=20"},
		{"all from the beginning", func(c *client.Client) error { _, err := c.ReadAll(ctx, "", 0); return err },
			"/base/v1/events", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, reqs := stub(t, http.StatusOK, `{"events": []}`)
			if err := tt.read(c); err != nil {
				t.Fatal(err)
			}
			got := reqs.all()[0]
			if got.Method != "GET" || got.Path != tt.wantPath || got.Query != tt.wantQuery || got.Authorization == "" {
				t.Errorf("request = %+v, want GET %s?%s with the token", got, tt.wantPath, tt.wantQuery)
			}
		})
	}
}

func TestAnErrorThatIsNotTheAPIsStillSaysWhatHappened(t *testing.T) {
	c, _ := stub(t, http.StatusBadGateway, "<html>\n<body>upstream   down</body></html>", "X-Request-Id", "req-7")
	_, err := c.ReadStream(ctx, "Order-1", 1, 10)
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want a *client.Error", err, err)
	}
	want := &client.Error{Status: 502, Message: "Bad Gateway: <html> <body>upstream down</body></html>", RequestID: "req-7", EventIndex: -1}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), "read stream Order-1: 502: Bad Gateway: <html> <body>upstream down</body></html> (request req-7)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if client.ErrorCode(err) != "" || errors.Is(err, &client.Error{}) {
		t.Error("an error without a code matches a code")
	}
}

func TestAnAPIErrorKeepsItsDetails(t *testing.T) {
	c, _ := stub(t, http.StatusConflict, `{"error": {"code": "wrong_expected_version", "message": "wrong expected version for stream Order-1: expected 2, actual version 3",
		"requestId": "req-9", "expected": 2, "actual": 3}}`, "X-Request-Id", "req-9")
	_, err := c.Append(ctx, "Order-1", 2, []client.Event{{Type: "T", Data: map[string]any{}}})
	if !client.IsWrongExpectedVersion(err) || !errors.Is(err, client.ErrWrongExpectedVersion) || client.IsStreamNotFound(err) {
		t.Fatalf("error = %v, want wrong_expected_version", err)
	}
	if got, want := err.Error(), "append to Order-1: 409 wrong_expected_version: wrong expected version for stream Order-1: expected 2, actual version 3 (request req-9)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAResponseThatIsNotJSONIsAnError(t *testing.T) {
	c, _ := stub(t, http.StatusOK, `<html>`)
	if _, err := c.ReadStream(ctx, "Order-1", 1, 10); err == nil || !strings.Contains(err.Error(), "decoding the 200 response") {
		t.Errorf("ReadStream of a non-JSON 200 = %v, want a decoding error", err)
	}
}

func TestNewRefusesWhatIsNotAWriterURL(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://host", "http://", "http://host/?q=1", "://x"} {
		if _, err := client.New(u, client.Options{}); err == nil {
			t.Errorf("New(%q) = nil error, want one", u)
		}
	}
	if _, err := client.New("https://writer.example:8443/strata", client.Options{}); err != nil {
		t.Errorf("New(https URL with a path) = %v", err)
	}
}

func TestEmptyIDsAreRefusedBeforeAnyRequest(t *testing.T) {
	c, reqs := stub(t, http.StatusOK, `{}`)
	if _, err := c.Append(ctx, "", client.Any, []client.Event{{Type: "T", Data: map[string]any{}}}); err == nil {
		t.Error("Append to an empty stream id = nil error")
	}
	if _, err := c.ReadStream(ctx, "", 1, 1); err == nil {
		t.Error("ReadStream of an empty stream id = nil error")
	}
	if _, err := c.ReadCategory(ctx, "", "", 1); err == nil {
		t.Error("ReadCategory of an empty category = nil error")
	}
	if len(reqs.all()) != 0 {
		t.Errorf("%d requests sent, want none", len(reqs.all()))
	}
}
