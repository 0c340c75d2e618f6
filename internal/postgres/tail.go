package postgres

import (
	"context"

	"github.com/strata-events/strata/internal/eventstore"
)

var _ eventstore.Tailer = (*Store)(nil)

// Head implements eventstore.Tailer: the cursor (now, now], whose reader
// has read every transaction visible now — now cut after the last event
// it sees, which anchors it (see anchor).
func (s *Store) Head(ctx context.Context, category string) (eventstore.Cursor, error) {
	c, _, err := s.tailCursor(category, "", 0)
	if err != nil {
		return "", err
	}
	var text string
	var top topRow
	if err := s.pool.QueryRow(ctx, "WITH "+topSQL+` SELECT pg_current_snapshot()::text, (SELECT epoch FROM store_meta),
		top.tx_id, top.position, top.event_id FROM (SELECT) n LEFT JOIN top ON true`).
		Scan(&text, &c.epoch, &top.tx, &top.position, &top.id); err != nil {
		return "", translate(err)
	}
	s.learnEpoch(c.epoch)
	now, err := parseSnapshot(text)
	if err != nil {
		return "", err
	}
	a, tx, err := top.anchor()
	if err != nil {
		return "", err
	}
	c.a, c.b, c.anchor = now.cut(tx+1), now.cut(tx+1), a
	return c.encode(), nil
}

// ReadTail implements eventstore.Tailer. It reads as readCursor does and
// gives, for each event, the cursor of its slice positioned after it.
func (s *Store) ReadTail(ctx context.Context, category string, after eventstore.Cursor, limit int) (eventstore.TailPage, error) {
	c, limit, err := s.tailCursor(category, after, limit)
	if err != nil {
		return eventstore.TailPage{}, err
	}
	var page eventstore.TailPage
	movedToHead := false
	for {
		sl, err := s.readSlice(ctx, s.pool, c, limit-len(page.Events), page.Events)
		if err != nil {
			return eventstore.TailPage{}, err
		}
		addTail(&page, c, sl)
		if sl.more {
			page.Next = page.After[len(page.After)-1]
			return page, nil
		}
		var moved bool
		if c, moved = c.past(sl.bound); moved && (len(page.Events) > 0 || movedToHead) || len(page.Events) == limit {
			page.Next = c.encode()
			return page, nil
		}
		movedToHead = movedToHead || moved
	}
}

// ReadBetween implements eventstore.Tailer. A cursor that is not in the
// middle of a slice (after is 0) stands where every transaction visible
// in its a has been read and nothing else: from such a cursor, the reader
// reaches to by reading the batch (from.a, to.a] — valid when from.a is
// contained in to.a — whose cursors keep b = to.a until it is read. to's
// anchor serves for to.a, which sees no more than to.b.
func (s *Store) ReadBetween(ctx context.Context, category string, from, to eventstore.Cursor, limit int) (eventstore.TailPage, bool, error) {
	c, limit, err := s.tailCursor(category, from, limit)
	if err != nil {
		return eventstore.TailPage{}, false, err
	}
	target, err := decodeCursor(to, category, s.epoch.Load())
	if err != nil {
		return eventstore.TailPage{}, false, err
	}
	switch {
	case target.after != 0:
		return eventstore.TailPage{}, false, eventstore.ErrNotBehind
	case c.b.equal(target.a): // on the way already
	case c.after != 0 || !c.a.containedIn(target.a):
		return eventstore.TailPage{}, false, eventstore.ErrNotBehind
	default:
		c.b, c.anchor, c.legacy = target.a, target.anchor, target.legacy
	}
	var page eventstore.TailPage
	for {
		if c.a.equal(c.b) {
			page.Next = to
			return page, true, nil
		}
		sl, err := s.readSlice(ctx, s.pool, c, limit-len(page.Events), page.Events)
		if err != nil {
			return eventstore.TailPage{}, false, err
		}
		addTail(&page, c, sl)
		if sl.more {
			page.Next = page.After[len(page.After)-1]
			return page, false, nil
		}
		if next := c.b.cut(sl.cut); !next.equal(c.b) {
			c.a, c.after, c.afterTx, c.byPosition = next, 0, 0, false
			if len(page.Events) == limit {
				page.Next = c.encode()
				return page, false, nil
			}
			continue
		}
		page.Next = to
		return page, true, nil
	}
}

func (s *Store) tailCursor(category string, after eventstore.Cursor, limit int) (cursor, int, error) {
	if category != "" {
		if err := eventstore.ValidateCategory(category); err != nil {
			return cursor{}, 0, err
		}
	}
	limit, err := eventstore.NormalizeLimit(limit)
	if err != nil {
		return cursor{}, 0, err
	}
	c, err := decodeCursor(after, category, s.epoch.Load())
	return c, limit, err
}

// addTail takes the events read from c's slice, and gives each the cursor
// after it.
func addTail(page *eventstore.TailPage, c cursor, sl slice) {
	read := sl.events[len(page.Events):]
	page.Events = sl.events
	for i, e := range read {
		page.After = append(page.After, c.at(e.GlobalPosition, sl.txs[i]).encode())
	}
}
