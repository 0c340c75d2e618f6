package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/subscribe"
)

// newSubscribeAPI is newAPI with a hub of the test's own, stopped before
// the server closes (a server waits for its open subscriptions).
func newSubscribeAPI(t *testing.T, hubOpts subscribe.Options, opts Options) *api {
	t.Helper()
	url, schema := harness.NewSchema(t)
	store, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema, SliceSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(context.Background(), postgres.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	opts.Subscriptions = subscribe.NewHub(hubCtx, store, hubOpts)
	srv := httptest.NewServer(New(store, loadTestSchemas(t), opts).Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(stopHub)
	return &api{t: t, url: srv.URL, store: store}
}

// sse is a Server-Sent Events client: a message is its fields; comments
// are counted.
type sse struct {
	t        *testing.T
	resp     *http.Response
	r        *bufio.Reader
	comments int
}

type message struct{ event, id, data string }

func (a *api) subscribe(path string, headers ...string) *sse {
	a.t.Helper()
	req, err := http.NewRequest("GET", a.url+path, nil)
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
	a.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		a.t.Fatalf("GET %s = %d (%s)", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{t: a.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next message (skipping comments); ok is false at the end
// of the stream.
func (c *sse) next() (m message, ok bool) {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return m, false
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m != (message{}) {
				return m, true
			}
		case strings.HasPrefix(line, ":"):
			c.comments++
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		default:
			c.t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

// events reads n event messages.
func (c *sse) events(n int) ([]eventJSON, []string) {
	c.t.Helper()
	var events []eventJSON
	var ids []string
	for len(events) < n {
		m, ok := c.next()
		if !ok || m.event != "" {
			c.t.Fatalf("after %d of %d events: message %+v, open %v", len(events), n, m, ok)
		}
		var e eventJSON
		if err := json.Unmarshal([]byte(m.data), &e); err != nil {
			c.t.Fatalf("data %q: %v", m.data, err)
		}
		events, ids = append(events, e), append(ids, m.id)
	}
	return events, ids
}

func (a *api) appendOrder(t *testing.T, stream, customer string) {
	t.Helper()
	ev := strings.Replace(orderCreated, `"user123"`, fmt.Sprintf("%q", customer), 1)
	if r := a.do("POST", "/v1/streams/"+stream+"/events", `{"expectedVersion": -1, "events": [`+ev+`]}`); r.status != http.StatusCreated {
		t.Fatalf("append to %s = %d %s", stream, r.status, r.body)
	}
}

func TestSubscribeOverHTTPCatchesUpGoesLiveAndResumesByLastEventID(t *testing.T) {
	a := newSubscribeAPI(t, subscribe.Options{PageSize: 4}, Options{})
	for i := range 10 {
		a.appendOrder(t, fmt.Sprint("Order-", i%3), fmt.Sprint("c", i))
	}
	sub := a.subscribe("/v1/categories/Order/subscribe")
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 20 {
				a.appendOrder(t, fmt.Sprintf("Order-%d%d", w, i%2), fmt.Sprintf("w%d-%d", w, i))
			}
		})
	}
	events, ids := sub.events(70)
	wg.Wait()
	seen, last := map[string]bool{}, map[string]int64{}
	for _, e := range events {
		if seen[e.ID.String()] {
			t.Errorf("%s@%d sent twice", e.StreamID, e.Version)
		}
		seen[e.ID.String()] = true
		if e.Version != last[e.StreamID]+1 {
			t.Errorf("%s@%d sent after version %d", e.StreamID, e.Version, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
		if e.Type != "OrderCreated" || len(e.Data) == 0 {
			t.Errorf("event %+v: want an OrderCreated with its data", e)
		}
	}

	// A resumed subscription reads from the cursor in batches of its own,
	// so events of different streams may interleave otherwise than they
	// did live; what it owes is every event after the cursor, once, each
	// stream in order.
	resumed := a.subscribe("/v1/categories/Order/subscribe", "Last-Event-ID", ids[41])
	a.appendOrder(t, "Order-late", "late")
	again, _ := resumed.events(29)
	want, at := map[string]bool{}, map[string]int64{}
	for i, e := range events {
		if i < 42 {
			at[e.StreamID] = e.Version
		} else {
			want[e.ID.String()] = true
		}
	}
	for _, e := range again {
		if e.StreamID == "Order-late" {
			continue
		}
		if !want[e.ID.String()] {
			t.Errorf("resumed: %s@%d was sent before the cursor, or twice", e.StreamID, e.Version)
		}
		delete(want, e.ID.String())
		if e.Version != at[e.StreamID]+1 {
			t.Errorf("resumed: %s@%d sent after version %d", e.StreamID, e.Version, at[e.StreamID])
		}
		at[e.StreamID] = e.Version
	}
	if len(want) != 0 || again[28].StreamID != "Order-late" {
		t.Errorf("resumed: %d events after the cursor missing, last event %s (want Order-late)", len(want), again[28].StreamID)
	}
}

func TestSubscribeToAStreamFromAVersionWithATypeFilter(t *testing.T) {
	a := newSubscribeAPI(t, subscribe.Options{}, Options{})
	a.do("POST", "/v1/streams/Order-s/events", appendBody(0, orderCreated, itemAdded, itemAdded, shipped))
	sub := a.subscribe("/v1/streams/Order-s/subscribe?from=2&types=OrderItemAdded,OrderShipped")
	a.do("POST", "/v1/streams/Order-s/events", appendBody(4, itemAdded, orderCreated, shipped))
	events, ids := sub.events(5)
	var got []string
	for i, e := range events {
		got = append(got, fmt.Sprintf("%s@%d id %s", e.Type, e.Version, ids[i]))
	}
	want := []string{"OrderItemAdded@2 id 2", "OrderItemAdded@3 id 3", "OrderShipped@4 id 4", "OrderItemAdded@5 id 5", "OrderShipped@7 id 7"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("sent %v, want %v", got, want)
	}
	resumed := a.subscribe("/v1/streams/Order-s/subscribe?types=OrderShipped", "Last-Event-ID", "4")
	if events, _ := resumed.events(1); events[0].Version != 7 {
		t.Errorf("resumed after version 4: got version %d, want 7", events[0].Version)
	}
}

func TestSubscriptionsRefuseBadRequestsWithClearErrors(t *testing.T) {
	a := newSubscribeAPI(t, subscribe.Options{}, Options{MaxSubscriptions: 2})
	cases := []struct{ path, header, code, message string }{
		{"/v1/events/subscribe?after=bogus", "", "invalid_request", "invalid position token"},
		{"/v1/events/subscribe", "bogus", "invalid_request", "invalid position token"},
		{"/v1/categories/Order/subscribe?from=3", "", "invalid_request", "from is for a stream"},
		{"/v1/streams/Order-1/subscribe?after=x", "", "invalid_request", "after is for $all"},
		{"/v1/streams/Order-1/subscribe?from=0", "", "invalid_request", "from must be a version"},
		{"/v1/streams/Order-1/subscribe", "x", "invalid_request", "Last-Event-ID"},
		{"/v1/streams/bad/subscribe", "", "invalid_stream_id", ""},
		{"/v1/events/subscribe?types=A,,B", "", "invalid_request", "types must be"},
	}
	for _, c := range cases {
		var headers []string
		if c.header != "" {
			headers = []string{"Last-Event-ID", c.header}
		}
		r := a.do("GET", c.path, "", headers...)
		if e := r.errorOf(); r.status != http.StatusBadRequest || e.Code != c.code || !strings.Contains(e.Message, c.message) {
			t.Errorf("GET %s (Last-Event-ID %q) = %d %s, want 400 %s saying %q", c.path, c.header, r.status, r.body, c.code, c.message)
		}
	}
	a.subscribe("/v1/events/subscribe")
	a.subscribe("/v1/events/subscribe")
	r := a.do("GET", "/v1/events/subscribe", "")
	if e := r.errorOf(); r.status != http.StatusTooManyRequests || e.Code != CodeTooManySubscriptions {
		t.Errorf("a third subscription with a limit of 2 = %d %s, want 429 %s", r.status, r.body, CodeTooManySubscriptions)
	}
}

// A client that stops reading fills its connection, then its buffer in
// the hub: it is cut off, and when it reads again it gets what was sent,
// then an error message saying why; the others go on.
func TestASlowSubscriberIsToldWhyItWasCutOff(t *testing.T) {
	a := newSubscribeAPI(t, subscribe.Options{Buffer: 5}, Options{})
	slow := a.subscribe("/v1/events/subscribe")
	fast := a.subscribe("/v1/events/subscribe")
	big := strings.Repeat("x", 256<<10)
	for i := 0; i < 60; i++ { // 15 MiB: more than the connection holds
		a.appendOrder(t, "Order-big", big)
		fast.events(1)
	}
	var m message
	for ok := true; ok; {
		var next message
		if next, ok = slow.next(); ok {
			m = next
		}
	}
	var body struct{ Error errorBody }
	if err := json.Unmarshal([]byte(m.data), &body); m.event != "error" || err != nil || body.Error.Code != "too_slow" {
		t.Fatalf("the slow subscriber's last message = %+v, want an error message with code too_slow", m)
	}
	a.appendOrder(t, "Order-after", "x")
	if events, _ := fast.events(1); events[0].StreamID != "Order-after" {
		t.Errorf("the fast subscriber got %s after the slow one was cut off", events[0].StreamID)
	}
}

func TestAnIdleSubscriptionGetsHeartbeats(t *testing.T) {
	a := newSubscribeAPI(t, subscribe.Options{}, Options{Heartbeat: 20 * time.Millisecond})
	sub := a.subscribe("/v1/events/subscribe")
	a.appendOrder(t, "Order-1", "x")
	sub.events(1)
	for sub.comments < 3 {
		line, err := sub.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			sub.comments++
		}
	}
}

// A subscription to a soft-deleted stream waits for what follows the
// deletion; one to a hard-deleted stream is told it is deleted.
func TestSubscribingToADeletedStream(t *testing.T) {
	a := newSubscribeAPI(t, subscribe.Options{}, Options{})
	a.do("POST", "/v1/streams/Order-sd/events", appendBody(0, orderCreated, itemAdded))
	if r := a.do("DELETE", "/v1/streams/Order-sd?expectedVersion=2", ""); r.status != 200 {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	sub := a.subscribe("/v1/streams/Order-sd/subscribe")
	a.do("POST", "/v1/streams/Order-sd/events", appendBody(3, itemAdded))
	if events, _ := sub.events(1); events[0].Version != 4 || events[0].Type != "OrderItemAdded" {
		t.Errorf("the subscription to the soft-deleted stream sent %+v first, want the event after the deletion, version 4", events[0])
	}
	a.do("DELETE", "/v1/streams/Order-sd?expectedVersion=4&hard=true", "")
	if m, ok := a.subscribe("/v1/streams/Order-sd/subscribe").next(); !ok || m.event != "error" || !strings.Contains(m.data, "stream_deleted") {
		t.Errorf("a subscription to the hard-deleted stream got %+v (open %v), want an error event stream_deleted", m, ok)
	}
}
