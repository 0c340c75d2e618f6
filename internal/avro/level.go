package avro

import (
	"fmt"
	"strings"
)

// Level is a compatibility level of a Confluent-style schema registry: which
// existing versions a new schema is checked against, and in which direction.
type Level string

// The levels, named as Confluent's registry names them.
const (
	LevelNone               Level = "NONE"                // no check
	LevelBackward           Level = "BACKWARD"            // the new schema reads the latest
	LevelBackwardTransitive Level = "BACKWARD_TRANSITIVE" // the new schema reads every existing one
	LevelForward            Level = "FORWARD"             // the latest reads the new schema
	LevelForwardTransitive  Level = "FORWARD_TRANSITIVE"  // every existing one reads the new schema
	LevelFull               Level = "FULL"                // both, against the latest
	LevelFullTransitive     Level = "FULL_TRANSITIVE"     // both, against every existing one
)

// DefaultLevel is Strata's default (CONTRACT.md §3): old consumers read new
// events, and new code reads all old events.
const DefaultLevel = LevelFullTransitive

// levels lists the levels in Confluent's documentation order.
var levels = [...]Level{LevelNone, LevelBackward, LevelBackwardTransitive, LevelForward,
	LevelForwardTransitive, LevelFull, LevelFullTransitive}

// ParseLevel parses a level name, ignoring case and surrounding space
// ("full_transitive" is FULL_TRANSITIVE). It fails for any other name.
func ParseLevel(s string) (Level, error) {
	name := Level(strings.ToUpper(strings.TrimSpace(s)))
	for _, l := range levels {
		if l == name {
			return l, nil
		}
	}
	names := make([]string, len(levels))
	for i, l := range levels {
		names[i] = string(l)
	}
	return "", fmt.Errorf("avro: unknown compatibility level %q, want one of %s", s, strings.Join(names, ", "))
}

// String returns the level's name, e.g. "FULL_TRANSITIVE".
func (l Level) String() string { return string(l) }

func (l Level) backward() bool {
	return l == LevelBackward || l == LevelBackwardTransitive || l == LevelFull || l == LevelFullTransitive
}

func (l Level) forward() bool {
	return l == LevelForward || l == LevelForwardTransitive || l == LevelFull || l == LevelFullTransitive
}

func (l Level) transitive() bool {
	return l == LevelBackwardTransitive || l == LevelForwardTransitive || l == LevelFullTransitive
}

// Check reports whether newSchema may be registered after existing (oldest
// first) at this level: nil if so, otherwise a *LevelError listing, for each
// existing version and direction that fails, every incompatibility. A
// non-transitive level checks only the latest version; with no existing
// versions every schema passes. An unknown level is an error. Safe for
// concurrent use.
func (l Level) Check(newSchema *Schema, existing []*Schema) error {
	if _, err := ParseLevel(string(l)); err != nil {
		return err
	}
	if l == LevelNone || len(existing) == 0 {
		return nil
	}
	first := len(existing) - 1
	if l.transitive() {
		first = 0
	}
	lerr := &LevelError{Level: l}
	for i := first; i < len(existing); i++ {
		if l.backward() {
			if incs := newChecker(false).check(newSchema.root, existing[i].root); len(incs) > 0 {
				lerr.Failures = append(lerr.Failures, LevelFailure{Existing: i, NewIsReader: true, Incompatibilities: incs})
			}
		}
		if l.forward() {
			if incs := newChecker(false).check(existing[i].root, newSchema.root); len(incs) > 0 {
				lerr.Failures = append(lerr.Failures, LevelFailure{Existing: i, Incompatibilities: incs})
			}
		}
	}
	if len(lerr.Failures) > 0 {
		return lerr
	}
	return nil
}

// LevelError reports why a new schema fails a compatibility level. It
// matches ErrIncompatible with errors.Is.
type LevelError struct {
	Level    Level
	Failures []LevelFailure
}

// LevelFailure is one failed check of a LevelError.
type LevelFailure struct {
	// Existing is the index of the existing schema in the slice given to
	// Check (0 is the oldest).
	Existing int
	// NewIsReader is true when the new schema cannot read data written with
	// the existing one (a backward failure), false when the existing schema
	// cannot read the new schema's data (a forward failure).
	NewIsReader       bool
	Incompatibilities []Incompatibility
}

// Error names the level and lists each failed check with its incompatibilities.
func (e *LevelError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "avro: the new schema breaks %s compatibility: ", e.Level)
	for i, f := range e.Failures {
		if i > 0 {
			b.WriteString("; ")
		}
		if f.NewIsReader {
			fmt.Fprintf(&b, "it cannot read data written with existing schema %d (", f.Existing)
		} else {
			fmt.Fprintf(&b, "existing schema %d cannot read its data (", f.Existing)
		}
		for j, inc := range f.Incompatibilities {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(inc.String())
		}
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is ErrIncompatible.
func (e *LevelError) Is(target error) bool { return target == ErrIncompatible }
