// Package subscribe follows $all, a category or a stream live, for the
// writer's Server-Sent Events.
//
// One feed per category ("" for $all) reads the head of the log for every
// subscriber of it, woken by this writer's appends and by a poll for those
// of other writers. A subscriber first catches up on its own, from its
// position, and then joins its feed at one of the feed's cursors
// (eventstore.Tailer.ReadBetween), so it sees every event once, in the
// order of its own cursors: no gap and no repeat at the switch, no late
// commit skipped, each stream in version order. The feed hands each page
// to its subscribers without waiting: a subscriber whose bounded buffer is
// full is cut off (ErrTooSlow) and resumes from its last position, so a
// slow one never slows the others or the appends. A stream's subscriber,
// once live, is handed only the pages that hold events of its stream, and
// the events of a page are encoded once for all its subscribers.
package subscribe

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// Store is what subscriptions read.
type Store interface {
	eventstore.Tailer
	ReadStream(ctx context.Context, stream eventstore.StreamID, q eventstore.StreamQuery) (eventstore.StreamPage, error)
}

// Defaults of Options.
const (
	DefaultPollInterval = 100 * time.Millisecond
	DefaultPageSize     = 500
	DefaultBuffer       = 10000
)

// Options configures a Hub; the zero value gives the defaults.
type Options struct {
	// PollInterval is how often a feed reads the head when nothing woke
	// it: how late appends through other writers arrive at most, beyond
	// the read itself. Default 100ms.
	PollInterval time.Duration
	// PageSize is the most events one read returns; default 500.
	PageSize int
	// Buffer is how many events a subscriber may have waiting before it
	// is cut off as too slow; default 10,000.
	Buffer int
	Logger *slog.Logger
}

// Encoder turns events into the data their messages carry. It may be
// called from several goroutines.
type Encoder func(ctx context.Context, events []eventstore.RecordedEvent) ([][]byte, error)

// ErrTooSlow ends a subscription whose reader fell too far behind.
var ErrTooSlow = errors.New("the subscriber fell too far behind and was disconnected; resume from the last event id received")

// Hub runs the feeds. It is safe for concurrent use.
type Hub struct {
	store  Store
	opts   Options
	ctx    context.Context // ends the feeds
	encode Encoder

	mu    sync.Mutex
	feeds map[string]*feed
}

// NewHub returns a Hub whose feeds stop when ctx ends.
func NewHub(ctx context.Context, store Store, opts Options) *Hub {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{store: store, opts: opts, ctx: ctx, feeds: map[string]*feed{}}
}

// EncodeWith sets how the data of Item is made; without it, Data is
// empty. Call it before the first subscription.
func (h *Hub) EncodeWith(encode Encoder) { h.encode = encode }

// Context is the one the Hub was made with: its feeds, and the
// subscriptions served over them, end with it.
func (h *Hub) Context() context.Context { return h.ctx }

// Notify wakes the feeds that an append to stream concerns: $all's, and
// its category's if that has a subscriber to the whole category, one
// still joining, or a live one of this stream. A feed that has only live
// subscribers of other streams is not woken: an append would make it read
// the category's head only to hand the page to no one, and at a few
// thousand appends a second those reads cost the store a quarter of its
// throughput. Such a feed finds the events of its streams by polling, as
// it finds those appended through other writers. It never blocks.
func (h *Hub) Notify(stream eventstore.StreamID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.feeds[""]; f != nil {
		f.wakeUp()
	}
	if f := h.feeds[stream.Category()]; f != nil && (len(f.subs) > 0 || len(f.streams[stream]) > 0) {
		f.wakeUp()
	}
}

// batch is one read of a feed: the events after start, up to next.
type batch struct {
	start, next eventstore.Cursor
	page        eventstore.TailPage
	enc         *encoding // the page's events, encoded once for all
}

// encoding is the data of a page's events, each made when a subscriber
// first needs it. A failure is not kept: the next one tries again.
type encoding struct {
	mu   sync.Mutex
	data [][]byte // by place in the page
}

// get sets the data of items, distinct events of page.
func (e *encoding) get(ctx context.Context, encode Encoder, page []eventstore.RecordedEvent, items []*Item) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.data == nil {
		e.data = make([][]byte, len(page))
	}
	var missing []*Item
	for _, it := range items {
		if e.data[it.at] == nil {
			missing = append(missing, it)
		}
	}
	if len(missing) > 0 {
		if err := encodeItems(ctx, encode, missing); err != nil {
			return err
		}
		for _, it := range missing {
			e.data[it.at] = it.Data
		}
	}
	for _, it := range items {
		it.Data = e.data[it.at]
	}
	return nil
}

// encodeItems sets the data of items in one call of encode.
func encodeItems(ctx context.Context, encode Encoder, items []*Item) error {
	events := make([]eventstore.RecordedEvent, len(items))
	for i, it := range items {
		events[i] = it.Event
	}
	data, err := encode(ctx, events)
	if err != nil {
		return err
	}
	for i, it := range items {
		it.Data = data[i]
	}
	return nil
}

// feed reads the head of one category for its subscribers.
type feed struct {
	hub      *Hub
	category string
	wake     chan struct{}
	stop     context.CancelFunc
	subs     map[*member]struct{} // handed every page; guarded by hub.mu
	// The live subscribers of one stream each, by stream: handed only
	// the pages that hold events of it. Guarded by hub.mu.
	streams map[eventstore.StreamID]map[*member]struct{}
	round   uint64 // counts the pages published; guarded by hub.mu
}

// member is a subscriber's place in a feed.
type member struct {
	ch     chan batch
	stream eventstore.StreamID // the one it follows, if any
	room   int                 // events it may still be sent; guarded by hub.mu
	failed error               // set when it was cut off; guarded by hub.mu
	live   bool                // it has joined: empty batches are not sent; guarded by hub.mu
	round  uint64              // the last page handed to it; guarded by hub.mu
	pages  int                 // how many were handed to it; guarded by hub.mu
	gone   chan struct{}
}

func (f *feed) wakeUp() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// join adds a member to the feed of category, starting the feed if need
// be. A member that follows stream takes every page until it has joined.
func (h *Hub) join(category string, stream eventstore.StreamID) *member {
	m := &member{ch: make(chan batch, 1024), stream: stream, room: h.opts.Buffer, gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.feeds[category]
	if f == nil {
		ctx, stop := context.WithCancel(h.ctx)
		f = &feed{hub: h, category: category, wake: make(chan struct{}, 1), stop: stop,
			subs: map[*member]struct{}{}, streams: map[eventstore.StreamID]map[*member]struct{}{}}
		h.feeds[category] = f
		go f.run(ctx)
	}
	f.subs[m] = struct{}{}
	return m
}

// leave takes a member out of its feed; the last one stops the feed.
func (h *Hub) leave(category string, m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.feeds[category]
	if f == nil {
		return
	}
	delete(f.subs, m)
	if of := f.streams[m.stream]; of != nil {
		if delete(of, m); len(of) == 0 {
			delete(f.streams, m.stream)
		}
	}
	if len(f.subs) == 0 && len(f.streams) == 0 {
		f.stop()
		delete(h.feeds, category)
	}
}

// received gives a member back the room of a batch it has taken.
func (h *Hub) received(m *member, n int) {
	h.mu.Lock()
	m.room += n
	h.mu.Unlock()
}

// joined marks a member of category's feed live: it needs no more empty
// batches to join at, and one that follows a stream is handed only the
// pages that hold events of it from now on.
func (h *Hub) joined(category string, m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m.live = true
	f := h.feeds[category]
	if f == nil || m.stream.IsZero() {
		return
	}
	if _, ok := f.subs[m]; !ok {
		return // it has left
	}
	delete(f.subs, m)
	of := f.streams[m.stream]
	if of == nil {
		of = map[*member]struct{}{}
		f.streams[m.stream] = of
	}
	of[m] = struct{}{}
}

// cutOff reports why a member was cut off, if it was.
func (h *Hub) cutOff(m *member) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m.failed
}

func (f *feed) run(ctx context.Context) {
	h := f.hub
	log := h.opts.Logger.With("feed", feedName(f.category))
	cursor, err := f.head(ctx)
	if err != nil {
		return // ctx ended
	}
	timer := time.NewTimer(h.opts.PollInterval)
	defer timer.Stop()
	failures := 0
	for {
		page, err := h.store.ReadTail(ctx, f.category, cursor, h.opts.PageSize)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			if failures == 1 || failures%100 == 0 {
				log.Warn("reading the head failed; retrying", "err", err, "failures", failures)
			}
		default:
			failures = 0
			f.publish(batch{start: cursor, next: page.Next, page: page})
			cursor = page.Next
			if len(page.Events) == h.opts.PageSize {
				continue // more to read now
			}
		}
		timer.Reset(h.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// head finds the feed's first cursor, retrying until ctx ends.
func (f *feed) head(ctx context.Context) (eventstore.Cursor, error) {
	for {
		c, err := f.hub.store.Head(ctx, f.category)
		if err == nil || ctx.Err() != nil {
			return c, ctx.Err()
		}
		f.hub.opts.Logger.Warn("finding the head failed; retrying", "feed", feedName(f.category), "err", err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(f.hub.opts.PollInterval):
		}
	}
}

// publish hands b to every member it concerns that has room for it, and
// cuts off the others. It never waits.
func (f *feed) publish(b batch) {
	h := f.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	b.enc = &encoding{}
	n := len(b.page.Events)
	for m := range f.subs {
		if n > 0 || !m.live {
			m.take(b)
		}
	}
	if n == 0 || len(f.streams) == 0 {
		return
	}
	f.round++
	for _, e := range b.page.Events {
		for m := range f.streams[e.StreamID] {
			if m.round != f.round {
				m.round = f.round
				m.take(b)
			}
		}
	}
}

// take hands b to m, or cuts m off when it has no room for it. The hub's
// lock is held.
func (m *member) take(b batch) {
	n := len(b.page.Events)
	switch {
	case m.failed != nil:
	case m.room < n || len(m.ch) == cap(m.ch):
		m.failed = ErrTooSlow
		close(m.gone)
	default:
		m.room -= n
		m.pages++
		m.ch <- b
	}
}

func feedName(category string) string {
	if category == "" {
		return "$all"
	}
	return category
}
