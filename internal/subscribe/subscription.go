package subscribe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/strata-events/strata/internal/eventstore"
)

// Request says what a subscription follows.
type Request struct {
	// Stream, when not zero, follows one stream from version From (the
	// first version when From is 0 or 1).
	Stream eventstore.StreamID
	From   int64
	// Category follows one category ("" for $all) after the cursor After
	// ("" for the beginning). Ignored when Stream is set.
	Category string
	After    eventstore.Cursor
	// Types, when set, keeps only events of these types.
	Types []string
}

// Item is an event and the position after it: the cursor to resume from
// ($all, a category), or the event's version (a stream), with the data of
// its message (see Hub.EncodeWith).
type Item struct {
	Event eventstore.RecordedEvent
	ID    string
	Data  []byte

	// A feed's page it comes from, whose encoding it shares, and its
	// place there; nil for an event read by this subscriber alone.
	from *batch
	at   int
}

// ErrEncode wraps a failure of the Hub's Encoder.
var ErrEncode = errors.New("cannot encode the events")

type phase int

const (
	catchingUp phase = iota // reading on its own
	joining                 // reading up to a batch of the feed
	live                    // taking the feed's batches
)

// Subscription is one subscriber's state. It is not safe for concurrent
// use: one goroutine calls Next, then Close.
type Subscription struct {
	hub      *Hub
	req      Request
	category string // the feed's: the stream's category for a stream
	m        *member
	phase    phase

	cursor  eventstore.Cursor // $all, a category: where it stands
	version int64             // a stream: the last version passed
	join    *batch            // joining: the batch it reads up to
	first   *batch            // a stream: the feed's first batch, not yet taken
	synced  bool              // a stream: the feed's first batch has come
	held    []Item            // items found but not yet encoded
}

// Subscribe returns a subscription; it reads nothing until Next.
func (h *Hub) Subscribe(req Request) (*Subscription, error) {
	s := &Subscription{hub: h, req: req, category: req.Category, cursor: req.After}
	if !req.Stream.IsZero() {
		s.category = req.Stream.Category()
		s.version = max(req.From-1, 0)
	} else if req.Category != "" {
		if err := eventstore.ValidateCategory(req.Category); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Next blocks until there are events to send and returns them, or returns
// ErrTooSlow, a store's error, an ErrEncode, or ctx's. After an error
// other than ErrTooSlow, Next may be called again: it goes on from where
// the last items it returned left off.
func (s *Subscription) Next(ctx context.Context) ([]Item, error) {
	if s.held == nil {
		items, err := s.next(ctx)
		if err != nil {
			return nil, err
		}
		s.held = items
	}
	if err := s.encode(ctx, s.held); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	items := s.held
	s.held = nil
	return items, nil
}

// encode sets the data of items: those of a feed's page through its
// shared encoding, the others in one call.
func (s *Subscription) encode(ctx context.Context, items []Item) error {
	encode := s.hub.encode
	if encode == nil {
		return nil
	}
	var own []*Item
	shared := map[*batch][]*Item{}
	for i := range items {
		switch it := &items[i]; {
		case it.Data != nil:
		case it.from == nil:
			own = append(own, it)
		default:
			shared[it.from] = append(shared[it.from], it)
		}
	}
	for b, its := range shared {
		if err := b.enc.get(ctx, encode, b.page.Events, its); err != nil {
			return err
		}
	}
	if len(own) == 0 {
		return nil
	}
	return encodeItems(ctx, encode, own)
}

// next finds the next items, not yet encoded.
func (s *Subscription) next(ctx context.Context) ([]Item, error) {
	if !s.req.Stream.IsZero() {
		return s.nextOfStream(ctx)
	}
	store, size := s.hub.store, s.hub.opts.PageSize
	for {
		switch s.phase {
		case catchingUp:
			page, err := store.ReadTail(ctx, s.category, s.cursor, size)
			if err != nil {
				return nil, err
			}
			items := s.items(page, nil)
			s.cursor = page.Next
			if len(page.Events) < size {
				s.m = s.hub.join(s.category, eventstore.StreamID{})
				s.phase = joining
			}
			if len(items) > 0 {
				return items, nil
			}
		case joining:
			if s.join == nil {
				b, err := s.receive(ctx)
				if err != nil {
					return nil, err
				}
				s.join = &b
			}
			page, done, err := store.ReadBetween(ctx, s.category, s.cursor, s.join.start, size)
			if errors.Is(err, eventstore.ErrNotBehind) {
				s.join = nil // not a point to join at: wait for the next batch
				continue
			}
			if err != nil {
				return nil, err
			}
			items := s.items(page, nil)
			s.cursor = page.Next
			if done {
				items = append(items, s.items(s.join.page, s.join)...)
				s.cursor, s.join, s.phase = s.join.next, nil, live
				s.hub.joined(s.category, s.m)
			}
			if len(items) > 0 {
				return items, nil
			}
		case live:
			b, err := s.receive(ctx)
			if err != nil {
				return nil, err
			}
			s.cursor = b.next
			if items := s.items(b.page, &b); len(items) > 0 {
				return items, nil
			}
		}
	}
}

// nextOfStream follows one stream: it reads the stream itself until it has
// caught up once after the feed of its category has handed it a first
// batch, then takes the stream's events from the feed, skipping versions
// it has passed and reading the stream again if a version is missing.
// The first batch matters: it starts where the feed stood after this
// subscriber joined (a new feed finds the head only then), so whatever
// the feed will not hand over was committed before that batch came and is
// read from the stream.
func (s *Subscription) nextOfStream(ctx context.Context) ([]Item, error) {
	size := s.hub.opts.PageSize
	for {
		if s.phase == live {
			b := s.first
			if b == nil {
				next, err := s.receive(ctx)
				if err != nil {
					return nil, err
				}
				b = &next
			}
			s.first = nil
			var items []Item
			for i, e := range b.page.Events {
				switch {
				case e.StreamID != s.req.Stream || e.Version <= s.version:
				case e.Version == s.version+1 && s.phase == live:
					s.version = e.Version
					if s.wanted(e) {
						items = append(items, Item{Event: e, ID: strconv.FormatInt(e.Version, 10), from: b, at: i})
					}
				default:
					s.phase = catchingUp // a version is missing: read the stream
				}
			}
			if len(items) > 0 {
				return items, nil
			}
			continue
		}
		if s.m != nil && !s.synced {
			b, err := s.receive(ctx)
			if err != nil {
				return nil, err
			}
			s.first, s.synced = &b, true
			s.hub.joined(s.category, s.m)
		}
		page, err := s.hub.store.ReadStream(ctx, s.req.Stream, eventstore.StreamQuery{From: s.version + 1, Limit: size})
		var deleted *eventstore.StreamDeletedError
		switch {
		case errors.As(err, &deleted) && !deleted.Hard:
			// Soft-deleted, and not written since: what follows the
			// deletion comes as for a stream not written yet.
			s.version = max(s.version, deleted.Version)
		case err != nil && !errors.Is(err, eventstore.ErrStreamNotFound):
			return nil, err
		}
		if n := len(page.Events); n > 0 {
			s.version = page.Events[n-1].Version
		}
		if len(page.Events) < size {
			if s.m == nil {
				s.m = s.hub.join(s.category, s.req.Stream) // then a first batch, and read again
			} else if s.synced {
				s.phase = live
			}
		}
		if items := s.streamItems(page.Events); len(items) > 0 {
			return items, nil
		}
	}
}

func (s *Subscription) receive(ctx context.Context) (batch, error) {
	select {
	case <-s.m.gone:
		return batch{}, s.hub.cutOff(s.m)
	default:
	}
	select {
	case b := <-s.m.ch:
		s.hub.received(s.m, len(b.page.Events))
		return b, nil
	case <-s.m.gone:
		return batch{}, s.hub.cutOff(s.m)
	case <-ctx.Done():
		return batch{}, ctx.Err()
	}
}

func (s *Subscription) wanted(e eventstore.RecordedEvent) bool {
	return len(s.req.Types) == 0 || slices.Contains(s.req.Types, e.Type)
}

// items returns the wanted events of page, which is that of batch b if
// b is not nil.
func (s *Subscription) items(page eventstore.TailPage, b *batch) []Item {
	var out []Item
	for i, e := range page.Events {
		if s.wanted(e) {
			out = append(out, Item{Event: e, ID: string(page.After[i]), from: b, at: i})
		}
	}
	return out
}

func (s *Subscription) streamItems(events []eventstore.RecordedEvent) []Item {
	var out []Item
	for _, e := range events {
		if s.wanted(e) {
			out = append(out, Item{Event: e, ID: strconv.FormatInt(e.Version, 10)})
		}
	}
	return out
}

// Close ends the subscription.
func (s *Subscription) Close() {
	if s.m != nil {
		s.hub.leave(s.category, s.m)
		s.m = nil
	}
}
