package eventstore

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DataSubjectErasedType is the system event an erasure appends to each
// stream that holds events of the data subject (its schema:
// registry.SystemSchemas), so that projectors and outside consumers of the
// stream's topic learn of it.
const DataSubjectErasedType = "$DataSubjectErased"

// Erasure is what an erasure of a data subject did.
type Erasure struct {
	Subject  string
	ErasedAt time.Time
	// KeyDestroyed is false when the subject had no key (no event with
	// personal fields, or erased before and none since).
	KeyDestroyed bool
	// Streams are the streams that received $DataSubjectErased, with
	// its version in each.
	Streams []AppendResult
}

// DataSubjects is a store that erases data subjects and finds their
// events; the PostgreSQL store is one.
type DataSubjects interface {
	// RecordErasure appends event(stream) to each stream, not
	// hard-deleted, that holds events of subject, and records the
	// erasure, in one transaction.
	RecordErasure(ctx context.Context, subject string, event func(StreamID) (EventData, error)) ([]AppendResult, time.Time, error)
	// SubjectEvents returns up to limit events of subject (metadata
	// DataSubject) after position, in position order, from every stream,
	// deleted ones included.
	SubjectEvents(ctx context.Context, subject string, after int64, limit int) ([]RecordedEvent, error)
}

// MaxDataSubjectLength bounds a data subject id, in bytes.
const MaxDataSubjectLength = 200

// ValidateDataSubject checks a data subject id: 1 to 200 bytes of UTF-8
// text without control characters or surrounding spaces.
func ValidateDataSubject(subject string) error {
	switch {
	case subject == "":
		return Errorf(CodeInvalidRequest, "a data subject id must not be empty")
	case len(subject) > MaxDataSubjectLength:
		return Errorf(CodeInvalidRequest, "a data subject id is at most %d bytes, got %d", MaxDataSubjectLength, len(subject))
	case !utf8.ValidString(subject) || strings.IndexFunc(subject, unicode.IsControl) >= 0:
		return Errorf(CodeInvalidRequest, "a data subject id must be text without control characters, got %q", subject)
	case strings.TrimSpace(subject) != subject:
		return Errorf(CodeInvalidRequest, "a data subject id must not begin or end with spaces, got %q", subject)
	}
	return nil
}
