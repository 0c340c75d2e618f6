package eventstore

import (
	"context"
	"fmt"
)

// StreamDeletedType is the system event a deletion appends to its stream
// (its schema: registry.SystemSchemas).
const StreamDeletedType = "$StreamDeleted"

// CodeStreamDeleted: the stream is deleted. Reads of it answer 404, and
// appends to a hard-deleted one (and a deletion of a deleted one) 409.
const CodeStreamDeleted = "stream_deleted"

// StreamDeletedError reports a deleted stream: reading one (soft-deleted
// with no event since, or hard-deleted), appending to a hard-deleted one,
// or deleting one that is deleted.
type StreamDeletedError struct {
	Stream StreamID
	// Version is the version of the stream's $StreamDeleted event.
	Version int64
	Hard    bool
	// Write is set for an append or a deletion refused, which HTTP
	// answers 409; a read is answered 404.
	Write bool
}

func (e *StreamDeletedError) Error() string {
	switch {
	case e.Hard && e.Write:
		return fmt.Sprintf("stream %s was deleted for good (hard) at version %d: it can never be written again", e.Stream, e.Version)
	case e.Hard:
		return fmt.Sprintf("stream %s was deleted for good (hard) at version %d", e.Stream, e.Version)
	case e.Write:
		return fmt.Sprintf("stream %s is already deleted (at version %d) and has no event since", e.Stream, e.Version)
	}
	return fmt.Sprintf("stream %s was deleted at version %d and has no event since: appending to it starts it again", e.Stream, e.Version)
}

// ErrorCode returns stream_deleted.
func (e *StreamDeletedError) ErrorCode() string { return CodeStreamDeleted }

// Is matches any error coded stream_deleted.
func (e *StreamDeletedError) Is(target error) bool { return isCode(target, CodeStreamDeleted) }

// Deletion is a request to delete a stream: Expected is checked as for an
// append (NoStream makes no sense and is refused), and Event is the
// $StreamDeleted event to append, encoded.
type Deletion struct {
	Stream   StreamID
	Expected ExpectedVersion
	Hard     bool
	Event    EventData
}

// Deleter is a store that deletes streams; the PostgreSQL store is one.
type Deleter interface {
	// DeleteStream appends d.Event to the stream and marks it deleted,
	// in one transaction. A missing stream is stream_not_found; a
	// hard-deleted one, or a soft-deleted one without events since
	// (unless d.Hard makes it hard now), a *StreamDeletedError.
	DeleteStream(ctx context.Context, d Deletion) (AppendResult, error)
}
