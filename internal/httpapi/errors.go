package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/strata-events/strata/internal/eventstore"
)

// Codes of the HTTP layer itself, beside the store's: errors coded with
// them (eventstore.Errorf(CodeNotFound, ...)) answer 404 and 405.
const (
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	eventstore.CodeInvalidRequest:         http.StatusBadRequest,
	eventstore.CodeInvalidStreamID:        http.StatusBadRequest,
	eventstore.CodeInvalidExpectedVersion: http.StatusBadRequest,
	eventstore.CodeUnauthenticated:        http.StatusUnauthorized,
	eventstore.CodeForbidden:              http.StatusForbidden,
	eventstore.CodeStreamNotFound:         http.StatusNotFound,
	CodeNotFound:                          http.StatusNotFound,
	CodeMethodNotAllowed:                  http.StatusMethodNotAllowed,
	eventstore.CodeWrongExpectedVersion:   http.StatusConflict,
	eventstore.CodeDuplicateEventID:       http.StatusConflict,
	eventstore.CodeTooLarge:               http.StatusRequestEntityTooLarge,
	eventstore.CodeUnknownEventType:       http.StatusUnprocessableEntity,
	eventstore.CodeSchemaViolation:        http.StatusUnprocessableEntity,
	eventstore.CodeUnavailable:            http.StatusServiceUnavailable,
	CodeTooManySubscriptions:              http.StatusTooManyRequests,
	eventstore.CodeInternal:               http.StatusInternalServerError,
	eventstore.CodeWaitTimeout:            http.StatusGatewayTimeout,
	eventstore.CodeProjectionHalted:       http.StatusServiceUnavailable,
	eventstore.CodeConflict:               http.StatusConflict,
	eventstore.CodeStreamDeleted:          http.StatusNotFound, // 409 for a refused write (below)
	eventstore.CodeApplyFailed:            http.StatusUnprocessableEntity,
	eventstore.CodeReservationTaken:       http.StatusConflict,
	eventstore.CodeReservationNotFound:    http.StatusNotFound,
}

// errorBody is the contract's error object, with the details of the
// typed errors that have them.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"requestId,omitempty"`

	Expected *int64 `json:"expected,omitempty"` // wrong_expected_version
	Actual   *int64 `json:"actual,omitempty"`
	ID       string `json:"id,omitempty"` // duplicate_event_id
	StreamID string `json:"streamId,omitempty"`
	Path     string `json:"path,omitempty"` // schema_violation
	Event    *int   `json:"event,omitempty"`
	Scope    string `json:"scope,omitempty"` // reservation_taken
	Value    string `json:"value,omitempty"`
	Holder   string `json:"holder,omitempty"`
	// Outcome is "unknown" for an unavailable append that may have been
	// stored: all of its events, or none.
	Outcome string `json:"outcome,omitempty"`
}

// outcomeUnknown is the error of an append that failed in a way that
// leaves unknown whether it was stored (postgres.OutcomeUnknownError).
type outcomeUnknown interface{ OutcomeUnknown() bool }

// eventError ties an error to the index of the event of an append that
// caused it.
type eventError struct {
	index int
	err   error
}

func (e *eventError) Error() string { return e.message() }
func (e *eventError) Unwrap() error { return e.err }

// describe turns an error into its status and body. Messages of internal
// errors are not shown to clients.
func describe(err error) (int, errorBody) {
	code := eventstore.ErrorCode(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = eventstore.CodeUnavailable
	case errors.Is(err, context.Canceled):
		code = eventstore.CodeUnavailable
	}
	body := errorBody{Code: code, Message: err.Error()}
	status, ok := statusOf[code]
	if !ok || code == eventstore.CodeInternal {
		return http.StatusInternalServerError, errorBody{Code: eventstore.CodeInternal, Message: "internal error; the request id is in the log"}
	}
	var unknown outcomeUnknown
	switch {
	case code == eventstore.CodeUnavailable && errors.As(err, &unknown) && unknown.OutcomeUnknown():
		// Its cause may be a deadline too; but this append may be stored.
		body.Outcome = "unknown"
	case code == eventstore.CodeUnavailable && errors.Is(err, context.DeadlineExceeded):
		body.Message = "the database did not answer in time; nothing was stored"
	}

	var deleted *eventstore.StreamDeletedError
	if errors.As(err, &deleted) {
		body.StreamID = deleted.Stream.String()
		if deleted.Write {
			status = http.StatusConflict
		}
	}
	var wrong *eventstore.WrongExpectedVersionError
	var dup *eventstore.DuplicateEventIDError
	var violation *eventstore.SchemaViolationError
	var taken *eventstore.ReservationTakenError
	var ev *eventError
	switch {
	case errors.As(err, &wrong):
		expected, actual := int64(wrong.Expected), wrong.Actual
		body.Expected, body.Actual, body.StreamID = &expected, &actual, wrong.Stream.String()
		body.Message = wrong.Error()
	case errors.As(err, &dup):
		body.ID, body.StreamID = dup.ID.String(), dup.Stream.String()
		body.Message = dup.Error()
	case errors.As(err, &violation):
		body.Path = violation.Path
	case errors.As(err, &taken):
		body.Scope, body.Value, body.Holder = taken.Scope, taken.Value, taken.Holder.String()
	}
	if errors.As(err, &ev) {
		i := ev.index
		body.Event = &i
	}
	return status, body
}

// WriteJSON writes v as the response's JSON body, with the status. Should v
// fail to encode, it writes a 500 internal error instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"could not encode the response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
