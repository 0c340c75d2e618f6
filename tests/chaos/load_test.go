package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// sentEvent is one event as a client sent it.
type sentEvent struct {
	ID   string
	Type string
	Data map[string]any
	// Subject is the data subject, for an event with personal fields.
	Subject string
}

// appendRec is the ledger's record of one append: what was sent and what
// came back. A client retries an unanswered append with the same body (the
// same event ids and expected version) until it gets an answer.
type appendRec struct {
	Stream   string
	Expected int64
	Events   []sentEvent
	body     []byte

	// Set under the ledger's lock.
	Attempts int
	Status   int    // the answer's status; 0 while unanswered
	Code     string // the error code of a refusal
	First    int64  // versions answered
	Last     int64
	Answered []answeredEvent
	Probe    bool
}

// acked says the writer answered that the append is stored (201, or 200
// for a retry of a stored append).
func (r *appendRec) acked() bool { return r.Status == http.StatusCreated || r.Status == http.StatusOK }

type answeredEvent struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// ledger holds every append the suite made. Safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	appends []*appendRec
	// retries counts attempts after the first; unexpected counts answers
	// that no correct writer gives to these appends (a conflict on a
	// stream only one client writes, a bad request).
	retries    int
	unexpected []string
}

func (l *ledger) add(r *appendRec) {
	l.mu.Lock()
	l.appends = append(l.appends, r)
	l.mu.Unlock()
}

func (l *ledger) snapshot() []*appendRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*appendRec(nil), l.appends...)
}

// counts returns the appends made, acknowledged and left unanswered.
func (l *ledger) counts() (total, acked, unanswered int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.appends {
		total++
		switch {
		case r.acked():
			acked++
		case r.Status == 0 || r.Status >= 500:
			unanswered++
		}
	}
	return
}

// newAppend builds an append and its body.
func newAppend(stream string, expected int64, events []sentEvent) *appendRec {
	type meta struct {
		DataSubject string `json:"dataSubject"`
	}
	type ev struct {
		ID       string         `json:"id"`
		Type     string         `json:"type"`
		Data     map[string]any `json:"data"`
		Metadata *meta          `json:"metadata,omitempty"`
	}
	body := struct {
		ExpectedVersion int64 `json:"expectedVersion"`
		Events          []ev  `json:"events"`
	}{ExpectedVersion: expected}
	for _, e := range events {
		out := ev{ID: e.ID, Type: e.Type, Data: e.Data}
		if e.Subject != "" {
			out.Metadata = &meta{e.Subject}
		}
		body.Events = append(body.Events, out)
	}
	b, _ := json.Marshal(body)
	return &appendRec{Stream: stream, Expected: expected, Events: events, body: b}
}

// attempt sends the append once to base. It returns whether an answer came
// that settles it (any status but 5xx); a 5xx or no answer leaves it
// unanswered, to be retried.
func (l *ledger) attempt(ctx context.Context, client *http.Client, base string, r *appendRec) bool {
	l.mu.Lock()
	r.Attempts++
	if r.Attempts > 1 {
		l.retries++
	}
	l.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/streams/"+r.Stream+"/events", bytes.NewReader(r.body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode >= 500 {
		l.mu.Lock()
		if err == nil {
			r.Status = resp.StatusCode // the last answer, still unanswered
		}
		l.mu.Unlock()
		return false
	}
	var ok struct {
		FirstVersion int64           `json:"firstVersion"`
		LastVersion  int64           `json:"lastVersion"`
		Events       []answeredEvent `json:"events"`
	}
	var refusal struct {
		Error struct{ Code, Message string }
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Status = resp.StatusCode
	if r.acked() {
		if err := json.Unmarshal(body, &ok); err != nil {
			l.unexpected = append(l.unexpected, fmt.Sprintf("append to %s answered %d with %q", r.Stream, resp.StatusCode, body))
			return true
		}
		r.First, r.Last, r.Answered = ok.FirstVersion, ok.LastVersion, ok.Events
		return true
	}
	json.Unmarshal(body, &refusal)
	r.Code = refusal.Error.Code
	l.unexpected = append(l.unexpected, fmt.Sprintf("append to %s at version %d (attempt %d) answered %d %s: %s",
		r.Stream, r.Expected, r.Attempts, resp.StatusCode, refusal.Error.Code, refusal.Error.Message))
	return true
}

// The load: clients that each own some orders, so that each knows its
// streams' versions and every append states its expected version exactly.
// An order is created, gets items in a few appends (some of two events,
// so that an append's atomicity is tested too), and ships; then its slot
// takes a new order.

const slotsPerClient = 8

type orderSlot struct {
	id       string
	version  int64
	adds     int // item appends still to make before shipping
	shipped  bool
	customer string // its data subject
}

type loadClient struct {
	n       int
	rng     *rand.Rand
	ledger  *ledger
	writers func() []string
	http    *http.Client
	every   time.Duration
	slots   [slotsPerClient]*orderSlot
	orders  int
}

var itemIDs = []string{"widget-x", "gadget-y", "bolt-m4", "nut-m4", "espresso-beans"}

// uuid returns a random version-4 UUID from the client's generator.
func (c *loadClient) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(c.rng.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func stamp(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
}

// next builds the next append of slot i.
func (c *loadClient) next(i int) *appendRec {
	s := c.slots[i]
	if s == nil || s.shipped {
		c.orders++
		s = &orderSlot{id: fmt.Sprintf("c%d-%06d", c.n, c.orders), adds: 1 + c.rng.IntN(4)}
		c.slots[i] = s
	}
	now := stamp(time.Now())
	var events []sentEvent
	switch {
	case s.version == 0:
		s.customer = fmt.Sprintf("customer-%d", c.rng.IntN(50))
		events = append(events, sentEvent{ID: c.uuid(), Type: "OrderCreated", Data: map[string]any{
			"orderId": s.id, "customerId": s.customer, "timestamp": now}})
	case s.adds > 0:
		for range 1 + c.rng.IntN(2) {
			data := map[string]any{"orderId": s.id, "itemId": itemIDs[c.rng.IntN(len(itemIDs))],
				"quantity": 1 + c.rng.IntN(5), "price": fmt.Sprintf("%d.%02d", c.rng.IntN(100), c.rng.IntN(100)), "timestamp": now}
			switch c.rng.IntN(3) {
			case 0:
				data["currency"] = "EUR"
			case 1:
				data["currency"] = "USD"
			} // else the default, USD
			events = append(events, sentEvent{ID: c.uuid(), Type: "OrderItemAdded", Data: data})
		}
	default:
		events = append(events, sentEvent{ID: c.uuid(), Type: "OrderShipped", Data: map[string]any{
			"orderId": s.id, "shippingAddress": fmt.Sprintf("%d Canal Street, Springfield", 1+c.rng.IntN(200)), "timestamp": now},
			Subject: s.customer})
	}
	return newAppend("Order-"+s.id, s.version, events)
}

// settled moves slot i on after its append was answered.
func (c *loadClient) settled(i int, r *appendRec) {
	s := c.slots[i]
	if !r.acked() {
		c.slots[i] = nil // refused: leave the order as it is
		return
	}
	s.version = r.Last
	switch r.Events[0].Type {
	case "OrderItemAdded":
		s.adds--
	case "OrderShipped":
		s.shipped = true
	}
}

// run makes appends until stop is closed, then finishes the one in hand,
// retrying it until it is answered or until giveUp.
func (c *loadClient) run(stop <-chan struct{}, giveUp context.Context) {
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % slotsPerClient {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r := c.next(i)
		c.ledger.add(r)
		backoff := 50 * time.Millisecond
		for {
			ws := c.writers()
			if c.ledger.attempt(giveUp, c.http, ws[c.rng.IntN(len(ws))], r) {
				break
			}
			select {
			case <-giveUp.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
		}
		c.settled(i, r)
	}
}

// probe makes one new order through base, with its own deadline, and
// reports whether it was acknowledged. Probes measure recovery; they go in
// the ledger like any append, and are never retried.
func (l *ledger) probe(client *http.Client, base, id, eventID string, timeout time.Duration) bool {
	r := newAppend("Order-"+id, 0, []sentEvent{{ID: eventID, Type: "OrderCreated", Data: map[string]any{
		"orderId": id, "customerId": "probe", "timestamp": stamp(time.Now())}}})
	r.Probe = true
	l.add(r)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.attempt(ctx, client, base, r) && r.acked()
}
