package subscribe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/memstore"
	"github.com/strata-events/strata/internal/postgres"
	"github.com/strata-events/strata/internal/storetest"
)

var ctx = context.Background()

type testStore interface {
	eventstore.Store
	Store
}

// stores runs a test against both stores: the in-memory one and
// PostgreSQL, whose cursors are snapshots (with slices of 3, so that a
// batch is read in several slices).
func stores(t *testing.T, test func(t *testing.T, s testStore)) {
	t.Run("memstore", func(t *testing.T) { test(t, memstore.New()) })
	t.Run("postgres", func(t *testing.T) {
		url, schema := harness.NewSchema(t)
		s, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, SliceSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if _, err := s.Migrate(ctx, postgres.MigrateOptions{}); err != nil {
			t.Fatal(err)
		}
		test(t, s)
	})
}

func newHub(t *testing.T, s Store, opts Options) *Hub {
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return NewHub(ctx, s, opts)
}

// appender appends n events to streams Order-0 .. Order-(k-1) in turn from
// several goroutines, waking the hub after each, and returns when done.
func appendConcurrently(t *testing.T, s eventstore.Store, h *Hub, n, writers int, prefix string) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range n / writers {
				stream := eventstore.MustParseStreamID(fmt.Sprintf("Order-%s%d", prefix, (w*7+i)%5))
				_, err := s.Append(ctx, stream, eventstore.Any, []eventstore.EventData{storetest.Event("E", fmt.Sprint(w, i))})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				h.Notify(stream)
			}
		})
	}
	wg.Wait()
}

// collect calls Next until it has n items, failing after a minute.
func collect(t *testing.T, sub *Subscription, n int) []Item {
	t.Helper()
	out := <-collectAsync(t, sub, n)
	if len(out) != n {
		t.Fatalf("got %d items, want %d", len(out), n)
	}
	return out
}

// checkOnceInOrder checks that items hold each event once and each stream
// in version order from 1.
func checkOnceInOrder(t *testing.T, items []Item) {
	t.Helper()
	seen := map[eventstore.UUID]bool{}
	last := map[string]int64{}
	for _, it := range items {
		e := it.Event
		if seen[e.ID] {
			t.Errorf("%s@%d sent twice", e.StreamID, e.Version)
		}
		seen[e.ID] = true
		if want := last[e.StreamID.String()] + 1; e.Version != want {
			t.Errorf("%s@%d sent after version %d", e.StreamID, e.Version, want-1)
		}
		last[e.StreamID.String()] = e.Version
	}
}

func TestASubscriptionCatchesUpAndGoesLiveWithoutAGap(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		for _, pageSize := range []int{2, 500} {
			t.Run(fmt.Sprintf("pages of %d", pageSize), func(t *testing.T) {
				prefix := fmt.Sprint(pageSize)
				h := newHub(t, s, Options{PageSize: pageSize})
				before, _ := storetest.ReadAllEvents(t, s, "", "", 1000)
				appendConcurrently(t, s, h, 40, 2, prefix) // history to catch up on
				sub, err := h.Subscribe(Request{})
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				done := make(chan struct{})
				go func() { defer close(done); appendConcurrently(t, s, h, 200, 4, prefix) }() // while it catches up and joins
				items := collect(t, sub, len(before)+240)
				<-done
				checkOnceInOrder(t, items)
				all, _ := storetest.ReadAllEvents(t, s, "", "", 1000)
				if len(all) != len(items) {
					t.Errorf("sent %d events, the store holds %d", len(items), len(all))
				}
			})
		}
	})
}

func TestASubscriptionResumesAfterTheIDOfAnyEvent(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		h := newHub(t, s, Options{PageSize: 4})
		appendConcurrently(t, s, h, 30, 3, "r")
		sub, _ := h.Subscribe(Request{Category: "Order"})
		items := collect(t, sub, 30)
		sub.Close()
		for _, k := range []int{0, 7, 28} {
			again, _ := h.Subscribe(Request{Category: "Order", After: eventstore.Cursor(items[k].ID)})
			rest := collect(t, again, 29-k)
			again.Close()
			if diff := cmp.Diff(eventIDs(items[k+1:]), eventIDs(rest)); diff != "" {
				t.Errorf("resumed after event %d (-first subscription +resumed):\n%s", k, diff)
			}
		}
	})
}

func eventIDs(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprintf("%s@%d", it.Event.StreamID, it.Event.Version))
	}
	return out
}

func TestAStreamSubscriptionSendsItsVersionsInOrderFromAVersion(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		h := newHub(t, s, Options{PageSize: 3})
		stream := eventstore.MustParseStreamID("Order-s")
		appendTo := func(n int) {
			for i := range n {
				if _, err := s.Append(ctx, stream, eventstore.Any, []eventstore.EventData{storetest.Event("E", fmt.Sprint(i))}); err != nil {
					t.Error(err)
				}
				h.Notify(stream)
				storetest.MustAppend(t, s, "Order-other", eventstore.Any, storetest.Event("E", "x"))
			}
		}
		appendTo(10)
		sub, _ := h.Subscribe(Request{Stream: stream, From: 4})
		defer sub.Close()
		done := make(chan struct{})
		go func() { defer close(done); appendTo(20) }()
		items := collect(t, sub, 27)
		<-done
		for i, it := range items {
			if want := int64(i + 4); it.Event.Version != want || it.ID != fmt.Sprint(want) || it.Event.StreamID != stream {
				t.Fatalf("item %d is %s@%d (id %s), want %s@%d", i, it.Event.StreamID, it.Event.Version, it.ID, stream, want)
			}
		}
	})
}

func TestATypeFilterKeepsOnlyItsTypes(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		h := newHub(t, s, Options{})
		for i := range 6 {
			typ := []string{"OrderCreated", "OrderShipped", "Other"}[i%3]
			storetest.MustAppend(t, s, fmt.Sprint("Order-", i), eventstore.NoStream, storetest.Event(typ, "x"))
		}
		sub, _ := h.Subscribe(Request{Types: []string{"OrderShipped", "OrderCreated"}})
		defer sub.Close()
		var types []string
		for _, it := range collect(t, sub, 4) {
			types = append(types, it.Event.Type)
		}
		if diff := cmp.Diff([]string{"OrderCreated", "OrderShipped", "OrderCreated", "OrderShipped"}, types); diff != "" {
			t.Errorf("types sent (-want +got):\n%s", diff)
		}
	})
}

func TestASlowSubscriberIsCutOffAndTheOthersGoOn(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		h := newHub(t, s, Options{Buffer: 10})
		storetest.MustAppend(t, s, "Order-first", eventstore.NoStream, storetest.Event("E", "x"))
		slow, _ := h.Subscribe(Request{})
		defer slow.Close()
		fast, _ := h.Subscribe(Request{})
		defer fast.Close()
		collect(t, slow, 1) // both have caught up and joined the feed
		collect(t, fast, 1)
		for i := range 30 { // in step with the fast one, which never falls behind
			storetest.MustAppend(t, s, "Order-burst", eventstore.Any, storetest.Event("E", fmt.Sprint(i)))
			h.Notify(eventstore.MustParseStreamID("Order-burst"))
			collect(t, fast, 1)
		}
		for {
			_, err := slow.Next(ctx)
			if errors.Is(err, ErrTooSlow) {
				break
			}
			if err != nil {
				t.Fatalf("the slow subscriber: %v, want ErrTooSlow", err)
			}
		}
	})
}

func TestTheLastSubscriberToLeaveStopsItsFeed(t *testing.T) {
	h := newHub(t, memstore.New(), Options{})
	a, _ := h.Subscribe(Request{Category: "Order"})
	b, _ := h.Subscribe(Request{Category: "Order"})
	for _, s := range []*Subscription{a, b} {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next on an empty store = %v, want the deadline", err)
		}
	}
	a.Close()
	if feeds(h) != 1 {
		t.Fatalf("%d feeds with one subscriber left, want 1", feeds(h))
	}
	b.Close()
	if feeds(h) != 0 {
		t.Fatalf("%d feeds with no subscriber, want 0", feeds(h))
	}
}

func feeds(h *Hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.feeds)
}

// collectAsync calls Next in a goroutine of its own until it has n items,
// for at most a minute, and then sends them.
func collectAsync(t *testing.T, sub *Subscription, n int) <-chan []Item {
	out := make(chan []Item, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var items []Item
		for len(items) < n {
			more, err := sub.Next(ctx)
			if err != nil {
				t.Errorf("Next after %d of %d items: %v", len(items), n, err)
				break
			}
			items = append(items, more...)
		}
		out <- items
	}()
	return out
}

// waitFeed waits until the feed of category is as ready says, called
// with the hub's lock held.
func waitFeed(t *testing.T, h *Hub, category string, ready func(f *feed) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h.mu.Lock()
		f := h.feeds[category]
		ok := f != nil && ready(f)
		h.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed of %q did not get ready", category)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allLive tells a feed whose n members that take every page are live.
func allLive(n int) func(f *feed) bool {
	return func(f *feed) bool {
		for m := range f.subs {
			if !m.live {
				return false
			}
		}
		return len(f.subs) == n
	}
}

// streamMember returns the live member of a feed that follows stream.
func streamMember(t *testing.T, h *Hub, category string, stream eventstore.StreamID) *member {
	t.Helper()
	var m *member
	waitFeed(t, h, category, func(f *feed) bool {
		for m = range f.streams[stream] {
			return true
		}
		return false
	})
	return m
}

func pagesHanded(h *Hub, m *member) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m.pages
}

func TestALiveStreamSubscriberIsHandedOnlyThePagesOfItsStream(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		h := newHub(t, s, Options{})
		stream := eventstore.MustParseStreamID("Order-mine")
		storetest.MustAppend(t, s, stream.String(), eventstore.NoStream, storetest.Event("E", "1"))
		category, _ := h.Subscribe(Request{Category: "Order"})
		defer category.Close()
		collect(t, category, 1)
		sub, _ := h.Subscribe(Request{Stream: stream})
		defer sub.Close()
		mine := collectAsync(t, sub, 2)
		m := streamMember(t, h, "Order", stream)
		before := pagesHanded(h, m)

		for i := range 30 {
			storetest.MustAppend(t, s, fmt.Sprint("Order-other", i%4), eventstore.Any, storetest.Event("E", fmt.Sprint(i)))
			h.Notify(eventstore.MustParseStreamID(fmt.Sprint("Order-other", i%4)))
		}
		collect(t, category, 30) // the feed has handed out every page of them
		if got := pagesHanded(h, m); got != before {
			t.Errorf("the stream's subscriber was handed %d pages of other streams", got-before)
		}

		storetest.MustAppend(t, s, stream.String(), eventstore.Any, storetest.Event("E", "2"))
		h.Notify(stream)
		items := <-mine
		if len(items) != 2 || items[0].Event.Version != 1 || items[1].Event.Version != 2 {
			t.Fatalf("the stream's subscriber got %v, want versions 1 and 2", eventIDs(items))
		}
		if got := pagesHanded(h, m); got != before+1 {
			t.Errorf("the stream's subscriber was handed %d pages for one event of its stream, want 1", got-before)
		}
	})
}

func TestAPageIsEncodedOnceForAllItsSubscribers(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		h := newHub(t, s, Options{})
		stream := eventstore.MustParseStreamID("Order-e0")
		var mu sync.Mutex
		encoded := map[eventstore.UUID]int{}
		inStream := map[eventstore.UUID]bool{}
		h.EncodeWith(func(_ context.Context, events []eventstore.RecordedEvent) ([][]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			out := make([][]byte, len(events))
			for i, e := range events {
				encoded[e.ID]++
				inStream[e.ID] = e.StreamID == stream
				out[i] = []byte(`"` + e.ID.String() + `"`)
			}
			return out, nil
		})
		const subscribers, events = 5, 20
		var results []<-chan []Item
		for range subscribers {
			sub, _ := h.Subscribe(Request{})
			defer sub.Close()
			results = append(results, collectAsync(t, sub, events))
		}
		sub, _ := h.Subscribe(Request{Stream: stream})
		defer sub.Close()
		results = append(results, collectAsync(t, sub, events/4))
		waitFeed(t, h, "", allLive(subscribers))
		streamMember(t, h, "Order", stream)

		for i := range events {
			storetest.MustAppend(t, s, fmt.Sprint("Order-e", i%4), eventstore.Any, storetest.Event("E", fmt.Sprint(i)))
			h.Notify(eventstore.MustParseStreamID(fmt.Sprint("Order-e", i%4)))
		}
		for i, r := range results {
			items := <-r
			if i < subscribers && len(items) != events || i == subscribers && len(items) != events/4 {
				t.Fatalf("subscriber %d got %d items", i, len(items))
			}
			for _, it := range items {
				if want := `"` + it.Event.ID.String() + `"`; string(it.Data) != want {
					t.Fatalf("subscriber %d: %s@%d has data %s, want %s", i, it.Event.StreamID, it.Event.Version, it.Data, want)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(encoded) != events {
			t.Errorf("%d events encoded, want %d", len(encoded), events)
		}
		for id, n := range encoded {
			// Once for $all's feed, and once more for the stream's: the
			// category's feed is another.
			if want := map[bool]int{false: 1, true: 2}[inStream[id]]; n != want {
				t.Errorf("event %s encoded %d times, want %d", id, n, want)
			}
		}
	})
}

// countingStore counts the reads of a category's head.
type countingStore struct {
	testStore
	category string
	mu       sync.Mutex
	reads    int
}

func (c *countingStore) ReadTail(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.TailPage, error) {
	c.mu.Lock()
	if category == c.category {
		c.reads++
	}
	c.mu.Unlock()
	return c.testStore.ReadTail(ctx, category, after, limit)
}

func (c *countingStore) readsSoFar() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func TestAppendsToOtherStreamsDoNotWakeAFeedOfLiveStreamSubscribers(t *testing.T) {
	stores(t, func(t *testing.T, s testStore) {
		counted := &countingStore{testStore: s, category: "Order"}
		h := newHub(t, counted, Options{PollInterval: time.Hour}) // so that only wake-ups make it read
		stream := eventstore.MustParseStreamID("Order-quiet")
		sub, _ := h.Subscribe(Request{Stream: stream})
		defer sub.Close()
		got := collectAsync(t, sub, 1)
		streamMember(t, h, "Order", stream)
		before := counted.readsSoFar()

		for i := range 20 {
			other := eventstore.MustParseStreamID(fmt.Sprint("Order-busy", i%3))
			storetest.MustAppend(t, s, other.String(), eventstore.Any, storetest.Event("E", fmt.Sprint(i)))
			h.Notify(other)
		}
		// A feed woken reads at once; give it the time to, had it been.
		time.Sleep(100 * time.Millisecond)
		if n := counted.readsSoFar() - before; n != 0 {
			t.Errorf("the feed read the head %d times for appends to other streams, want 0", n)
		}
		storetest.MustAppend(t, s, stream.String(), eventstore.NoStream, storetest.Event("E", "mine"))
		h.Notify(stream)
		items := <-got
		if len(items) != 1 || items[0].Event.StreamID != stream || items[0].Event.Version != 1 {
			t.Fatalf("the stream's subscriber got %v, want %s@1", eventIDs(items), stream)
		}
	})
}
