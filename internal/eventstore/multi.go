package eventstore

import (
	"context"
	"strconv"
)

// Limits of a multi-stream append.
const (
	// MaxMultiEvents is the most events one multi-stream append carries,
	// over all its streams.
	MaxMultiEvents = MaxAppendEvents
	// MaxMultiStreams is the most streams it names, appended to or
	// guarded.
	MaxMultiStreams = 100
)

// StreamAppend is one stream's part of a multi-stream append.
type StreamAppend struct {
	Stream   StreamID
	Expected ExpectedVersion
	Events   []EventData
	// Reserve claims values for the stream, and Release gives up values
	// it holds, in the same transaction (see Reservation).
	Reserve, Release []Reservation
}

// Guard is a stream that a multi-stream append checks and does not
// write: its version must be Expected (NoStream, StreamExists or N) when
// the append commits.
type Guard struct {
	Stream   StreamID
	Expected ExpectedVersion
}

// MultiAppender is a store that appends to several streams at once; the
// PostgreSQL store is one.
type MultiAppender interface {
	// AppendMulti stores every append's events in one transaction, if
	// every expected version and every guard holds, or nothing. Errors
	// as for Append: a *WrongExpectedVersionError names the stream that
	// failed. A retry with the same event ids is a replay, as for one
	// stream. The results are in the order of appends.
	AppendMulti(ctx context.Context, appends []StreamAppend, guards []Guard) ([]AppendResult, error)
}

// ValidateMulti checks a multi-stream append: at least one append, each
// valid as an append of its own; guards whose expectation can be checked
// (not Any); no stream named twice; no event id used twice; and the
// limits.
func ValidateMulti(appends []StreamAppend, guards []Guard) error {
	if len(appends) == 0 {
		return Errorf(CodeInvalidRequest, "appends is empty: a multi-stream append needs at least one append")
	}
	if n := len(appends) + len(guards); n > MaxMultiStreams {
		return Errorf(CodeTooLarge, "a multi-stream append may name at most %d streams, appended to or guarded; this one names %d", MaxMultiStreams, n)
	}
	total := 0
	for _, a := range appends {
		total += len(a.Events)
	}
	if total > MaxMultiEvents {
		return Errorf(CodeTooLarge, "a multi-stream append may carry at most %d events in all; this one has %d", MaxMultiEvents, total)
	}
	named := make(map[string]string, len(appends)+len(guards))
	ids := make(map[UUID]string)
	values := make(map[Reservation]string)
	for i, a := range appends {
		where := "appends[" + strconv.Itoa(i) + "]"
		if err := ValidateAppend(a.Stream, a.Expected, a.Events); err != nil {
			return Errorf(ErrorCode(err), "%s: %s", where, err.(*Error).Message)
		}
		if err := ValidateReservations(where+".", a.Reserve, a.Release, values); err != nil {
			return err
		}
		if before, dup := named[a.Stream.String()]; dup {
			return Errorf(CodeInvalidRequest, "%s.streamId: %s is also %s's: append a stream's events in one append", where, a.Stream, before)
		}
		named[a.Stream.String()] = where
		for j, e := range a.Events {
			if e.ID.IsZero() {
				continue
			}
			if before, dup := ids[e.ID]; dup {
				return Errorf(CodeInvalidRequest, "%s.events[%d].id: %s is also the id of %s", where, j, e.ID, before)
			}
			ids[e.ID] = where + ".events[" + strconv.Itoa(j) + "]"
		}
	}
	for i, g := range guards {
		where := "guards[" + strconv.Itoa(i) + "]"
		switch {
		case g.Stream.IsZero():
			return Errorf(CodeInvalidStreamID, "%s.streamId is missing", where)
		case g.Expected == Any:
			return Errorf(CodeInvalidExpectedVersion, "%s.expectedVersion: a guard checks a version: 0 (the stream does not exist), -2 (it exists) or N >= 1, not -1 (any)", where)
		}
		if err := g.Expected.Validate(); err != nil {
			return Errorf(ErrorCode(err), "%s: %s", where, err.(*Error).Message)
		}
		if before, dup := named[g.Stream.String()]; dup {
			return Errorf(CodeInvalidRequest, "%s.streamId: %s is also %s's: a stream appended to is checked by its own expectedVersion", where, g.Stream, before)
		}
		named[g.Stream.String()] = where
	}
	return nil
}
