package eventstore

import (
	"context"
	"errors"
)

// TailPage is a page of $all or of a category with the cursor after each
// of its events: a reader that stops after Events[i] continues from
// After[i] and sees neither a gap nor a repeat.
type TailPage struct {
	Events []RecordedEvent
	After  []Cursor
	// Next continues after the page, as Page.Next does.
	Next Cursor
}

// ErrNotBehind is returned by Tailer.ReadBetween when a reader cannot go on
// from one cursor to the other: the first has seen something the second
// has not, or the second stands in the middle of a page.
var ErrNotBehind = errors.New("the cursor is not behind the other")

// Tailer is a Store that live subscriptions follow: one reader reads the
// head of $all (or a category) for all of them, and each subscriber, once
// it has caught up on its own, joins that reader at one of its cursors.
type Tailer interface {
	// Head returns a cursor that has passed every event committed so far
	// in $all (category "") or a category: a reader from it sees only
	// what commits later.
	Head(ctx context.Context, category string) (Cursor, error)

	// ReadTail reads like ReadAll (category "") or ReadCategory and gives
	// the cursor after each event.
	ReadTail(ctx context.Context, category string, after Cursor, limit int) (TailPage, error)

	// ReadBetween reads what a reader at from has still to read to stand
	// where a reader at to stands: the events that to has passed and from
	// has not, a page at a time. done reports that the page reaches to;
	// Next is then to itself, and the reader continues as from to. Pass a
	// page's Next back as from until done. It returns ErrNotBehind when
	// from has passed an event that to has not, or when to is not a point
	// to join at (every cursor that a page of the head ends with is one).
	ReadBetween(ctx context.Context, category string, from, to Cursor, limit int) (page TailPage, done bool, err error)
}
