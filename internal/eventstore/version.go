package eventstore

import "strconv"

// ExpectedVersion is the condition an append sets on the stream's version.
type ExpectedVersion int64

// The special expected versions; any value N >= 1 means "exactly at N".
const (
	// Any appends whatever the stream's version, creating it if needed.
	Any ExpectedVersion = -1
	// NoStream requires that the stream does not exist yet.
	NoStream ExpectedVersion = 0
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -2
)

// ParseExpectedVersion accepts the contract's values: -1, 0, -2 or N >= 1.
// Anything else is an *Error with code invalid_expected_version.
func ParseExpectedVersion(v int64) (ExpectedVersion, error) {
	e := ExpectedVersion(v)
	if err := e.Validate(); err != nil {
		return 0, err
	}
	return e, nil
}

// Validate reports whether e is one of the contract's values.
func (e ExpectedVersion) Validate() error {
	if e < StreamExists {
		return Errorf(CodeInvalidExpectedVersion,
			"invalid expected version %d: use -1 (any), 0 (the stream must not exist), -2 (the stream must exist) or a version N >= 1", int64(e))
	}
	return nil
}

// Allows reports whether a stream at version actual (0: it does not exist)
// meets the expectation.
func (e ExpectedVersion) Allows(actual int64) bool {
	switch e {
	case Any:
		return true
	case StreamExists:
		return actual > 0
	default:
		return actual == int64(e)
	}
}

// String names the special values and prints exact versions as numbers.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	default:
		return strconv.FormatInt(int64(e), 10)
	}
}
