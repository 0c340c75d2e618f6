package eventstore

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Reservations hold unique values ("one account per email address"),
// which streams alone cannot: an append claims a value in a scope, in the
// same transaction as its events, and the value is the stream's until an
// append of that stream releases it (or the stream is deleted for good).

const (
	// CodeReservationTaken: a value claimed, or released, is held by
	// another stream. HTTP answers 409.
	CodeReservationTaken = "reservation_taken"
	// CodeReservationNotFound: no stream holds the value. HTTP answers 404.
	CodeReservationNotFound = "reservation_not_found"

	// MaxReservations bounds the values one append claims and releases.
	MaxReservations = 100
	// MaxReservationScopeLength and MaxReservationValueLength bound a
	// scope's and a value's length, in bytes.
	MaxReservationScopeLength = 100
	MaxReservationValueLength = 1000
)

// Reservation is a value in a scope: {"scope": "customer-email", "value":
// "a@b.c"}. Values are compared byte for byte: a scope whose values should
// match regardless of case is given them folded.
type Reservation struct {
	Scope string
	Value string
}

func (r Reservation) String() string { return r.Scope + " " + strconv.Quote(r.Value) }

// Reserved is a value and the stream holding it.
type Reserved struct {
	Reservation
	Stream StreamID
	// Version is the stream's version after the append that claimed it.
	Version int64
	At      time.Time
}

// ReservationTakenError reports a claim, or a release, of a value that
// another stream holds.
type ReservationTakenError struct {
	Reservation
	Holder  StreamID
	Release bool // a release, not a claim
}

func (e *ReservationTakenError) Error() string {
	if e.Release {
		return fmt.Sprintf("%s cannot be released: it is held by %s, not by the stream appended to", e.Reservation, e.Holder)
	}
	return fmt.Sprintf("%s is already reserved, by %s", e.Reservation, e.Holder)
}

// ErrorCode returns reservation_taken.
func (e *ReservationTakenError) ErrorCode() string { return CodeReservationTaken }

// Is matches any error coded reservation_taken.
func (e *ReservationTakenError) Is(target error) bool { return isCode(target, CodeReservationTaken) }

// ReservationReader is a store that answers who holds a value; the
// PostgreSQL store is one. Claims and releases go with appends
// (StreamAppend.Reserve and Release, through a MultiAppender).
type ReservationReader interface {
	// Reservation returns the holder of r, or an error coded
	// reservation_not_found.
	Reservation(ctx context.Context, r Reservation) (Reserved, error)
}

var scopePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks a reservation: a scope of letters, digits, ".", "_" and
// "-" (starting with a letter or digit), and a value of valid UTF-8
// without NUL, neither empty.
func (r Reservation) Validate() error {
	switch {
	case r.Scope == "":
		return Errorf(CodeInvalidRequest, "scope is required")
	case len(r.Scope) > MaxReservationScopeLength:
		return Errorf(CodeInvalidRequest, "scope is %d bytes long; at most %d", len(r.Scope), MaxReservationScopeLength)
	case !scopePattern.MatchString(r.Scope):
		return Errorf(CodeInvalidRequest, "scope %q may hold only letters, digits, '.', '_' and '-', and starts with a letter or digit", r.Scope)
	case r.Value == "":
		return Errorf(CodeInvalidRequest, "value is required")
	case len(r.Value) > MaxReservationValueLength:
		return Errorf(CodeInvalidRequest, "value is %d bytes long; at most %d", len(r.Value), MaxReservationValueLength)
	case !utf8.ValidString(r.Value) || strings.ContainsRune(r.Value, 0):
		return Errorf(CodeInvalidRequest, "value must be UTF-8 text without NUL")
	}
	return nil
}

// ValidateReservations checks an append's claims and releases, each named
// by its place (where is "" for a single append, or "appends[i]."), and
// notes each value in seen, with its place, so that a value named twice
// in a multi-stream append is refused.
func ValidateReservations(where string, reserve, release []Reservation, seen map[Reservation]string) error {
	if n := len(reserve) + len(release); n > MaxReservations {
		return Errorf(CodeTooLarge, "%san append may claim and release at most %d values; this one names %d", where, MaxReservations, n)
	}
	for _, list := range []struct {
		name string
		rs   []Reservation
	}{{"reserve", reserve}, {"release", release}} {
		for i, r := range list.rs {
			place := where + list.name + "[" + strconv.Itoa(i) + "]"
			if err := r.Validate(); err != nil {
				return Errorf(ErrorCode(err), "%s.%s", place, err.(*Error).Message)
			}
			if before, dup := seen[r]; dup {
				return Errorf(CodeInvalidRequest, "%s: %s is also named at %s", place, r, before)
			}
			seen[r] = place
		}
	}
	return nil
}
