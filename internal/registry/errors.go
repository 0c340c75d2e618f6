package registry

import (
	"errors"
	"fmt"

	"github.com/strata-events/strata/internal/eventstore"
)

// Error codes of the Confluent Schema Registry API. The HTTP status of each
// is its first three digits (40401 → 404); the codes of three digits are
// Confluent's REST layer's own, and are their status.
const (
	CodeBadRequest                        = 400 // malformed JSON body
	CodeNotFound                          = 404 // no such route
	CodeMethodNotAllowed                  = 405
	CodeIncompatibleSchema                = 409
	CodeUnprocessable                     = 422 // a body that is required is missing
	CodeSubjectNotFound                   = 40401
	CodeVersionNotFound                   = 40402
	CodeSchemaNotFound                    = 40403
	CodeSubjectCompatibilityNotConfigured = 40408
	CodeInvalidSchema                     = 42201
	CodeInvalidVersion                    = 42202
	CodeInvalidCompatibilityLevel         = 42203
	CodeOperationNotPermitted             = 42205
	CodeInvalidSubject                    = 42208
	CodeSchemaTooLarge                    = 42209
	CodeStoreError                        = 50001
)

// Error is the registry's error: a Confluent error code and a message fit
// to show to the client, as the API's error body {"error_code", "message"}.
// Err keeps the cause, if any, for errors.Is and errors.As: a store error
// whose cause is eventstore.ErrUnavailable matches it.
type Error struct {
	Code    int
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status of the error's code.
func (e *Error) Status() int {
	if e.Code < 1000 {
		return e.Code
	}
	return e.Code / 100
}

// Code returns the registry error code of the first *Error in err's chain,
// and CodeStoreError for any other non-nil error.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeStoreError
}

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func subjectNotFound(subject string) *Error {
	return errorf(CodeSubjectNotFound, "Subject '%s' not found.", subject)
}

func versionNotFound(version int) *Error {
	return errorf(CodeVersionNotFound, "Version %d not found.", version)
}

func schemaNotFound(id int) *Error {
	if id <= 0 {
		return errorf(CodeSchemaNotFound, "Schema not found")
	}
	return errorf(CodeSchemaNotFound, "Schema %d not found", id)
}

func invalidVersion(version string) *Error {
	return errorf(CodeInvalidVersion, "The specified version '%s' is not a valid version id. "+
		"Allowed values are between [1, 2^31-1] and the string \"latest\"", version)
}

func invalidLevel() *Error {
	return errorf(CodeInvalidCompatibilityLevel, "Invalid compatibility level. Valid values are none, backward, forward, full, "+
		"backward_transitive, forward_transitive, and full_transitive")
}

// storeError reports a failure of the Storage (or of the external
// registry) as Confluent reports its store's: 50001, with the cause kept.
func storeError(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: CodeStoreError, Message: fmt.Sprintf("Error in the backend data store: %s: %v", op, err), Err: err}
}

// unavailableError reports an external registry that cannot be reached (or
// fails with a server error): eventstore.ErrUnavailable for the writer's
// API, with its cause kept.
type unavailableError struct{ cause error }

func (e *unavailableError) Error() string {
	return "the schema registry is unavailable: " + e.cause.Error()
}
func (e *unavailableError) Unwrap() error        { return e.cause }
func (e *unavailableError) ErrorCode() string    { return eventstore.CodeUnavailable }
func (e *unavailableError) Is(target error) bool { return eventstore.ErrUnavailable.Is(target) }
