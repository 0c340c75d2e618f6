// Package eventstore is Strata's domain: stream ids, expected versions,
// events, the Store interface and the typed errors every layer shares.
//
// It imports only the standard library. Adapters (internal/postgres,
// internal/memstore) implement Store; engines (the HTTP API, the relay, the
// projector) use it.
package eventstore

import "context"

// Store is an append-only event store.
//
// Implementations are safe for concurrent use. Every method validates its
// arguments first and returns an *Error (or a typed error below) without
// touching storage when they are bad. A failed Append stores nothing.
type Store interface {
	// Append stores events at the end of stream, atomically, if the
	// stream's version meets expected. Events get consecutive versions.
	//
	// It returns *WrongExpectedVersionError when the version does not
	// match, *DuplicateEventIDError when an id is used by a different
	// event, and an *Error with code too_large, invalid_request,
	// invalid_stream_id, invalid_expected_version or unavailable. Appending
	// the same ids to the same stream again returns the first result with
	// Replayed set.
	Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events []EventData) (AppendResult, error)

	// ReadStream returns a page of one stream's events in version order, or
	// ErrStreamNotFound.
	ReadStream(ctx context.Context, stream StreamID, q StreamQuery) (StreamPage, error)

	// ReadAll returns the events committed after the cursor across all
	// streams, in position order (see Cursor).
	ReadAll(ctx context.Context, after Cursor, limit int) (Page, error)

	// ReadCategory is ReadAll restricted to one category. A cursor from
	// ReadAll or another category is refused, like any malformed cursor,
	// with an invalid_request error whose message names the position token.
	ReadCategory(ctx context.Context, category string, after Cursor, limit int) (Page, error)
}

// Direction is the order of a stream read.
type Direction int

const (
	Forward Direction = iota
	Backward
)

// StreamQuery selects a page of a stream.
type StreamQuery struct {
	// From is the first version to return. Zero means the first event
	// when reading forward and the last when reading backward.
	From int64
	// Limit is the most events to return, 1 to MaxReadLimit; zero means
	// DefaultReadLimit.
	Limit     int
	Direction Direction
}

// Normalize checks a read of stream by q, before any I/O, and applies the
// defaults. Stores call it first.
func (q StreamQuery) Normalize(stream StreamID) (StreamQuery, error) {
	if stream.IsZero() {
		return q, Errorf(CodeInvalidStreamID, "the stream id is missing")
	}
	limit, err := NormalizeLimit(q.Limit)
	if err != nil {
		return q, err
	}
	q.Limit = limit
	if q.From < 0 {
		return q, Errorf(CodeInvalidRequest, "from must be a version >= 1, not %d", q.From)
	}
	if q.Direction != Forward && q.Direction != Backward {
		return q, Errorf(CodeInvalidRequest, "unknown direction %d", q.Direction)
	}
	return q, nil
}

// NormalizeLimit turns 0 into DefaultReadLimit and refuses values outside
// 1..MaxReadLimit.
func NormalizeLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultReadLimit, nil
	case limit < 0 || limit > MaxReadLimit:
		return 0, Errorf(CodeInvalidRequest, "limit must be between 1 and %d, not %d", MaxReadLimit, limit)
	}
	return limit, nil
}

// StreamPage is a page of a stream read.
type StreamPage struct {
	Events []RecordedEvent
	// Version is the stream's version when it was read.
	Version int64
	// Next is the version to read from to continue in the same direction:
	// forward, one past the last event returned (where new events will
	// appear); backward, one before it, and 0 once the first event has
	// been returned.
	Next int64
}

// Cursor is an opaque position in $all or a category. The empty Cursor is
// the beginning. Readers pass a page's Next back to continue; reading again
// from a cursor returns the same events, except at the head of the log,
// where it returns whatever has committed since.
//
// A cursor never skips an event that commits late with a lower
// GlobalPosition, and keeps each stream in version order.
type Cursor string

// Page is a page of $all or of a category.
type Page struct {
	Events []RecordedEvent
	// Next continues after the last event of this page; it is set even
	// when the page is empty.
	Next Cursor
}
