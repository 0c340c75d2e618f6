package eventstore

import (
	"errors"
	"fmt"
)

// Error codes. They are the codes of the contract's error bodies; the HTTP
// layer maps each to a status in one table.
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidStreamID        = "invalid_stream_id"
	CodeInvalidExpectedVersion = "invalid_expected_version"
	CodeUnauthenticated        = "unauthenticated"
	CodeForbidden              = "forbidden"
	CodeStreamNotFound         = "stream_not_found"
	CodeWrongExpectedVersion   = "wrong_expected_version"
	CodeDuplicateEventID       = "duplicate_event_id"
	CodeTooLarge               = "too_large"
	CodeUnknownEventType       = "unknown_event_type"
	CodeSchemaViolation        = "schema_violation"
	CodeUnavailable            = "unavailable"
	CodeInternal               = "internal"
	// Read-your-writes on a projector's read API.
	CodeWaitTimeout      = "wait_timeout"      // 504: not applied in time
	CodeProjectionHalted = "projection_halted" // 503: it will not be until resumed
	// The projector's admin actions.
	CodeConflict    = "conflict"     // 409: the action clashes with one in progress
	CodeApplyFailed = "apply_failed" // 422: a parked event failed again
)

// Error is the store's error type: a code from the list above and a message
// fit to show to the client that caused it.
//
// errors.Is(err, &Error{Code: c}) holds for any error in err's chain whose
// code is c, so the sentinels below match every error of their kind.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrorCode returns the code, so that typed errors and *Error share ErrorCode.
func (e *Error) ErrorCode() string { return e.Code }

// Is matches any *Error or typed error with the same code.
func (e *Error) Is(target error) bool { return isCode(target, e.Code) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels, for errors.Is.
var (
	ErrInvalidRequest       = &Error{Code: CodeInvalidRequest, Message: "invalid request"}
	ErrInvalidStreamID      = &Error{Code: CodeInvalidStreamID, Message: "invalid stream id"}
	ErrInvalidExpected      = &Error{Code: CodeInvalidExpectedVersion, Message: "invalid expected version"}
	ErrStreamNotFound       = &Error{Code: CodeStreamNotFound, Message: "stream not found"}
	ErrWrongExpectedVersion = &Error{Code: CodeWrongExpectedVersion, Message: "wrong expected version"}
	ErrDuplicateEventID     = &Error{Code: CodeDuplicateEventID, Message: "duplicate event id"}
	ErrTooLarge             = &Error{Code: CodeTooLarge, Message: "too large"}
	ErrUnavailable          = &Error{Code: CodeUnavailable, Message: "the database is unavailable"}
	ErrUnknownEventType     = &Error{Code: CodeUnknownEventType, Message: "unknown event type"}
	ErrSchemaViolation      = &Error{Code: CodeSchemaViolation, Message: "schema violation"}
)

// WrongExpectedVersionError reports an append whose expected version did not
// match the stream. Actual is the stream's version when the append was
// refused, 0 if the stream does not exist.
type WrongExpectedVersionError struct {
	Stream   StreamID
	Expected ExpectedVersion
	Actual   int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("wrong expected version for stream %s: expected %s, actual version %d", e.Stream, e.Expected, e.Actual)
}

// ErrorCode returns wrong_expected_version.
func (e *WrongExpectedVersionError) ErrorCode() string { return CodeWrongExpectedVersion }

// Is matches ErrWrongExpectedVersion.
func (e *WrongExpectedVersionError) Is(target error) bool {
	return isCode(target, CodeWrongExpectedVersion)
}

// DuplicateEventIDError reports an event id that is already stored for a
// different event: in another stream, at another place in this stream, or
// with other content.
type DuplicateEventIDError struct {
	ID     UUID
	Stream StreamID // the stream that already holds the id
	// Stored is set when every id of the append is stored in its stream,
	// in the append's order at consecutive versions and with the same
	// types, and only the schema or the bytes of some data differ: the
	// stored events, in order, with their ids, stream, type, version,
	// position, schema and data. They may be the same events encoded
	// with another schema (a retry after a registration); a layer that
	// knows the schemas can compare their values, and answer a replay.
	Stored []RecordedEvent
}

func (e *DuplicateEventIDError) Error() string {
	return fmt.Sprintf("event id %s is already used by a different event in stream %s", e.ID, e.Stream)
}

// ErrorCode returns duplicate_event_id.
func (e *DuplicateEventIDError) ErrorCode() string { return CodeDuplicateEventID }

// Is matches ErrDuplicateEventID.
func (e *DuplicateEventIDError) Is(target error) bool { return isCode(target, CodeDuplicateEventID) }

// ErrorCode returns the code of the first error in err's chain that has one,
// and "internal" for any other non-nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var c interface{ ErrorCode() string }
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return CodeInternal
}

func isCode(target error, code string) bool {
	t, ok := target.(*Error)
	return ok && t.Code == code
}

// SchemaViolationError reports event data that does not fit its type's
// schema. Path names the field, as "items[2].price"; it is empty when the
// data as a whole is wrong (not a JSON object, say).
type SchemaViolationError struct {
	Type   string
	Path   string
	Reason string
}

func (e *SchemaViolationError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("data of %s does not fit its schema: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("data of %s does not fit its schema at %s: %s", e.Type, e.Path, e.Reason)
}

// ErrorCode returns schema_violation.
func (e *SchemaViolationError) ErrorCode() string { return CodeSchemaViolation }

// Is matches ErrSchemaViolation.
func (e *SchemaViolationError) Is(target error) bool { return isCode(target, CodeSchemaViolation) }
