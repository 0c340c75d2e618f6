package memstore

import (
	"context"

	"github.com/strata-events/strata/internal/eventstore"
)

var _ eventstore.Tailer = (*Store)(nil)

// Head implements eventstore.Tailer.
func (s *Store) Head(ctx context.Context, category string) (eventstore.Cursor, error) {
	if category != "" {
		if err := eventstore.ValidateCategory(category); err != nil {
			return "", err
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return encodeCursor(category, int64(len(s.events))), nil
}

// ReadTail implements eventstore.Tailer.
func (s *Store) ReadTail(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.TailPage, error) {
	page, _, err := s.tail(ctx, category, after, "", limit)
	return page, err
}

// ReadBetween implements eventstore.Tailer. Positions are one order here:
// every cursor is a point to join at.
func (s *Store) ReadBetween(ctx context.Context, category string, from, to eventstore.Cursor, limit int) (eventstore.TailPage, bool, error) {
	return s.tail(ctx, category, from, to, limit)
}

// tail reads from after up to until ("" for the end).
func (s *Store) tail(ctx context.Context, category string, after, until eventstore.Cursor, limit int) (eventstore.TailPage, bool, error) {
	if category != "" {
		if err := eventstore.ValidateCategory(category); err != nil {
			return eventstore.TailPage{}, false, err
		}
	}
	limit, err := eventstore.NormalizeLimit(limit)
	if err != nil {
		return eventstore.TailPage{}, false, err
	}
	pos, err := decodeCursor(after, category)
	if err != nil {
		return eventstore.TailPage{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.TailPage{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := int64(len(s.events))
	if until != "" {
		if end, err = decodeCursor(until, category); err != nil {
			return eventstore.TailPage{}, false, err
		}
		if pos > end {
			return eventstore.TailPage{}, false, eventstore.ErrNotBehind
		}
	}
	if pos > int64(len(s.events)) || end > int64(len(s.events)) {
		return eventstore.TailPage{}, false, eventstore.Errorf(eventstore.CodeInvalidRequest, "invalid position token: it is beyond the end of the store")
	}
	var page eventstore.TailPage
	for ; pos < end && len(page.Events) < limit; pos++ {
		if category == "" || s.events[pos].StreamID.Category() == category {
			page.Events = append(page.Events, s.copyEvent(int(pos)))
			page.After = append(page.After, encodeCursor(category, pos+1))
		}
	}
	page.Next = encodeCursor(category, pos)
	return page, pos == end, nil
}
