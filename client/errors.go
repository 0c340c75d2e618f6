package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/strata-events/strata/internal/eventstore"
)

// The error codes of the API (CONTRACT.md §2): the writer's own.
const (
	CodeInvalidRequest         = eventstore.CodeInvalidRequest
	CodeInvalidStreamID        = eventstore.CodeInvalidStreamID
	CodeInvalidExpectedVersion = eventstore.CodeInvalidExpectedVersion
	CodeUnauthenticated        = eventstore.CodeUnauthenticated
	CodeForbidden              = eventstore.CodeForbidden
	CodeStreamNotFound         = eventstore.CodeStreamNotFound
	CodeWrongExpectedVersion   = eventstore.CodeWrongExpectedVersion
	CodeDuplicateEventID       = eventstore.CodeDuplicateEventID
	CodeTooLarge               = eventstore.CodeTooLarge
	CodeUnknownEventType       = eventstore.CodeUnknownEventType
	CodeSchemaViolation        = eventstore.CodeSchemaViolation
	CodeUnavailable            = eventstore.CodeUnavailable
	CodeInternal               = eventstore.CodeInternal
	CodeReservationTaken       = eventstore.CodeReservationTaken
	CodeReservationNotFound    = eventstore.CodeReservationNotFound
)

// Error is a request the writer answered with a status other than 2xx. A
// refused request stored nothing, except when Outcome is OutcomeUnknown.
//
// errors.Is(err, &Error{Code: c}) holds for an *Error with code c, so the
// sentinels below match every error of their kind.
type Error struct {
	// Status is the HTTP status, such as 409.
	Status int
	// Code is the contract's error code, such as "wrong_expected_version";
	// empty when the response was not the API's error body (a proxy's
	// page, say).
	Code string
	// Message is the writer's explanation, fit to show to a person.
	Message string
	// RequestID is the writer's X-Request-Id of the request, which its
	// log carries too.
	RequestID string

	// Expected and Actual are set for wrong_expected_version: the expected
	// version sent and the stream's version (0: it does not exist).
	Expected ExpectedVersion
	Actual   int64
	// EventID and StreamID are set for duplicate_event_id: the event id
	// and the stream that already holds it. StreamID is also set for
	// wrong_expected_version: the stream whose expectation failed (one
	// of a multi-stream append's).
	EventID  string
	StreamID string
	// Path is set for schema_violation: the field of the data at fault,
	// such as "items[2].price".
	Path string
	// EventIndex is the index in the append of the event at fault, or -1.
	EventIndex int
	// Outcome is OutcomeUnknown for an unavailable append whose database
	// connection failed after it was sent, when the writer could not learn
	// whether it committed: all of its events are stored, or none is.
	// Retrying with the same event ids is safe and tells which. Empty
	// otherwise.
	Outcome string
	// Scope, Value and Holder are set for reservation_taken: the value
	// claimed (or released) and the stream that holds it.
	Scope, Value, Holder string
}

// OutcomeUnknown is Error.Outcome for an append that may have been stored.
const OutcomeUnknown = "unknown"

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// Is matches an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// Sentinels, for errors.Is.
var (
	ErrWrongExpectedVersion = &Error{Status: http.StatusConflict, Code: CodeWrongExpectedVersion, Message: "wrong expected version", EventIndex: -1}
	ErrDuplicateEventID     = &Error{Status: http.StatusConflict, Code: CodeDuplicateEventID, Message: "duplicate event id", EventIndex: -1}
	ErrStreamNotFound       = &Error{Status: http.StatusNotFound, Code: CodeStreamNotFound, Message: "stream not found", EventIndex: -1}
	ErrUnavailable          = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "unavailable", EventIndex: -1}
)

// IsWrongExpectedVersion reports whether err is, or wraps, an append
// refused because the stream was not at the expected version.
func IsWrongExpectedVersion(err error) bool { return errors.Is(err, ErrWrongExpectedVersion) }

// IsOutcomeUnknown reports whether err is, or wraps, an append that may
// have been stored (see Error.Outcome).
func IsOutcomeUnknown(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Outcome == OutcomeUnknown
}

// IsReservationTaken reports whether err is, or wraps, an append refused
// because a value it claimed or released is held by another stream
// (Error.Holder).
func IsReservationTaken(err error) bool { return ErrorCode(err) == CodeReservationTaken }

// IsStreamNotFound reports whether err is, or wraps, a read of a stream
// that does not exist.
func IsStreamNotFound(err error) bool { return errors.Is(err, ErrStreamNotFound) }

// ErrorCode returns the code of the *Error in err's chain, or "" when there
// is none (a transport error, say).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// errorJSON is the API's error body.
type errorJSON struct {
	Error *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
		Expected  *int64 `json:"expected"`
		Actual    *int64 `json:"actual"`
		ID        string `json:"id"`
		StreamID  string `json:"streamId"`
		Path      string `json:"path"`
		Event     *int   `json:"event"`
		Outcome   string `json:"outcome"`
		Scope     string `json:"scope"`
		Value     string `json:"value"`
		Holder    string `json:"holder"`
	} `json:"error"`
}

// responseError turns a non-2xx response and its body into an *Error.
func responseError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"), EventIndex: -1}
	var b errorJSON
	if err := json.Unmarshal(body, &b); err != nil || b.Error == nil || b.Error.Code == "" {
		e.Message = http.StatusText(resp.StatusCode)
		if s := snippet(body); s != "" {
			e.Message += ": " + s
		}
		return e
	}
	d := b.Error
	e.Code, e.Message = d.Code, d.Message
	if d.RequestID != "" {
		e.RequestID = d.RequestID
	}
	if d.Expected != nil {
		e.Expected = ExpectedVersion(*d.Expected)
	}
	if d.Actual != nil {
		e.Actual = *d.Actual
	}
	e.EventID, e.StreamID, e.Path, e.Outcome = d.ID, d.StreamID, d.Path, d.Outcome
	e.Scope, e.Value, e.Holder = d.Scope, d.Value, d.Holder
	if d.Event != nil {
		e.EventIndex = *d.Event
	}
	return e
}

// snippet returns the start of a body that is not the API's, as one line.
func snippet(body []byte) string {
	const limit = 200
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > limit {
		s = s[:limit]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}
