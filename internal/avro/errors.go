package avro

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors. Every error from parsing, converting, resolving and
// checking wraps exactly one of them, so callers can classify failures with
// errors.Is and read the details from the typed error (errors.As). (Only
// ParseLevel's error for an unknown level name stands apart.)
var (
	// ErrInvalidSchema is wrapped by Parse and ParseAny errors.
	ErrInvalidSchema = errors.New("invalid avro schema")
	// ErrInvalidJSON is wrapped when FromJSON input is not well-formed JSON.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrSchemaViolation is matched by *ValidationError: well-formed data that
	// does not fit the schema.
	ErrSchemaViolation = errors.New("data does not match the schema")
	// ErrDecode is matched by *DecodeError: binary data that is malformed for
	// the writer's schema, or that cannot be represented in the reader's.
	ErrDecode = errors.New("cannot decode avro data")
	// ErrIncompatible is matched by *CompatibilityError and *LevelError.
	ErrIncompatible = errors.New("incompatible avro schemas")
)

// ValidationError reports a value that does not fit the schema, at a path
// such as `items[2].price` (record fields joined by dots, array indices and
// quoted map keys in brackets; empty for the whole value). The HTTP layer
// returns it as `schema_violation` with `path`.
type ValidationError struct {
	Path    string
	Message string
	segs    []string // path segments, innermost first, until finish joins them
}

// Error returns "path: message", or the message alone at the top level,
// without a package prefix: it is meant to be shown to the client as it is.
func (e *ValidationError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Is reports whether target is ErrSchemaViolation.
func (e *ValidationError) Is(target error) bool { return target == ErrSchemaViolation }

// DecodeError reports binary data that cannot be decoded: malformed for the
// writer's schema (truncated, a bad union index, invalid UTF-8 ...) or, when
// resolving, a value the reader's schema cannot hold (an enum symbol the reader
// lacks and no enum default, a union branch the reader has no match for).
type DecodeError struct {
	Path    string // where in the reader's shape, as in ValidationError
	Offset  int    // byte offset in the input at which decoding failed
	Message string
	segs    []string
}

// Error returns "avro: decode path at byte N: message".
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("avro: decode")
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	b.WriteString(" at byte ")
	b.WriteString(strconv.Itoa(e.Offset))
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Is reports whether target is ErrDecode.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// pathError is implemented by the errors that carry a value path. The
// recursive walkers add a segment while unwinding, so the path costs nothing
// unless something failed; segments are collected in a slice and joined once
// at the API boundary (finishPath), so that an error deep in nested data
// costs linear, not quadratic, time.
type pathError interface {
	error
	prefix(seg string)
	finish()
}

func (e *ValidationError) prefix(seg string) { e.segs = append(e.segs, seg) }
func (e *DecodeError) prefix(seg string)     { e.segs = append(e.segs, seg) }
func (e *ValidationError) finish()           { e.Path, e.segs = joinPath(e.segs), nil }
func (e *DecodeError) finish()               { e.Path, e.segs = joinPath(e.segs), nil }

// joinPath joins segments given innermost first: field names with dots,
// "[3]" and `["key"]` without.
func joinPath(segs []string) string {
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		seg := segs[i]
		if b.Len() > 0 && !strings.HasPrefix(seg, "[") {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// withPath adds seg in front of err's path when err carries one.
func withPath(err error, seg string) error {
	if pe, ok := err.(pathError); ok {
		pe.prefix(seg)
	}
	return err
}

// finishPath turns the collected segments of err into its Path.
func finishPath(err error) error {
	if pe, ok := err.(pathError); ok {
		pe.finish()
	}
	return err
}

func indexSeg(i int) string { return "[" + strconv.Itoa(i) + "]" }

func keySeg(k string) string { return "[" + strconv.Quote(k) + "]" }

// fieldSeg is the path segment of a record field: its name, or the quoted
// form for a key from the input that is not a valid name ("", "a.b").
func fieldSeg(name string) string {
	if isName(name) {
		return name
	}
	return keySeg(name)
}

func violation(format string, args ...any) error {
	return &ValidationError{Message: fmt.Sprintf(format, args...)}
}

// violationAt is a violation at path segment seg below the current value.
func violationAt(seg, message string) error {
	return &ValidationError{Message: message, segs: []string{seg}}
}

// schemaError builds a Parse error; the message names where in the schema.
func schemaError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSchema, fmt.Sprintf(format, args...))
}
