package eventstore

import (
	"fmt"
	"strings"
)

// Limits on stream IDs, from the contract.
const (
	MaxCategoryLength = 64
	MaxIDLength       = 200
)

// StreamID names a stream: "{Category}-{id}", such as "Order-a1b2c3d4".
//
// The category is the text before the first "-" and matches
// ^[A-Za-z][A-Za-z0-9_]{0,63}$; the id is 1–200 characters of [A-Za-z0-9_.:@-]
// and may itself contain "-". The zero StreamID is invalid: a StreamID that
// did not come from ParseStreamID or NewStreamID is rejected by every Store.
type StreamID struct {
	category string
	id       string
}

// ParseStreamID validates s and splits it into category and id. It returns an
// *Error with code invalid_stream_id that says which rule s breaks.
func ParseStreamID(s string) (StreamID, error) {
	category, id, found := strings.Cut(s, "-")
	if !found {
		return StreamID{}, invalidStreamID(s, `it has no "-" between category and id`)
	}
	if err := ValidateCategory(category); err != nil {
		return StreamID{}, invalidStreamID(s, err.(*Error).Message)
	}
	if msg := checkID(id); msg != "" {
		return StreamID{}, invalidStreamID(s, msg)
	}
	return StreamID{category: category, id: id}, nil
}

// NewStreamID builds a StreamID from its parts, with the same checks as
// ParseStreamID.
func NewStreamID(category, id string) (StreamID, error) {
	return ParseStreamID(category + "-" + id)
}

// MustParseStreamID is ParseStreamID for constants in tests and examples; it
// panics on an invalid id.
func MustParseStreamID(s string) StreamID {
	id, err := ParseStreamID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// Category returns the stream's category, such as "Order".
func (s StreamID) Category() string { return s.category }

// ID returns the part after the category, such as "a1b2c3d4".
func (s StreamID) ID() string { return s.id }

// String returns the stream ID as "{Category}-{id}", or "" for the zero value.
func (s StreamID) String() string {
	if s.IsZero() {
		return ""
	}
	return s.category + "-" + s.id
}

// IsZero reports whether s is the zero (invalid) StreamID.
func (s StreamID) IsZero() bool { return s.category == "" }

// ValidateCategory checks a category name alone, for category reads. It
// returns an *Error with code invalid_stream_id.
func ValidateCategory(c string) error {
	switch {
	case c == "":
		return Errorf(CodeInvalidStreamID, "the category is empty")
	case len(c) > MaxCategoryLength:
		return Errorf(CodeInvalidStreamID, "the category is longer than %d characters", MaxCategoryLength)
	case !isLetter(c[0]):
		return Errorf(CodeInvalidStreamID, "the category %q does not start with a letter", c)
	}
	for i := 1; i < len(c); i++ {
		if b := c[i]; !isLetter(b) && !isDigit(b) && b != '_' {
			return Errorf(CodeInvalidStreamID, "the category %q has %s; only letters, digits and _ are allowed", c, describeByte(c, i))
		}
	}
	return nil
}

func checkID(id string) string {
	switch {
	case id == "":
		return "the id after the category is empty"
	case len(id) > MaxIDLength:
		return fmt.Sprintf("the id is longer than %d characters", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if isLetter(b) || isDigit(b) || strings.IndexByte("_.:@-", b) >= 0 {
			continue
		}
		return fmt.Sprintf("the id has %s; only letters, digits and _ . : @ - are allowed", describeByte(id, i))
	}
	return ""
}

func invalidStreamID(s, why string) error {
	return &Error{Code: CodeInvalidStreamID, Message: fmt.Sprintf("invalid stream id %q: %s", s, why)}
}

func describeByte(s string, i int) string {
	if s[i] < 0x20 || s[i] >= 0x7f {
		return fmt.Sprintf("byte 0x%02x at offset %d", s[i], i)
	}
	return fmt.Sprintf("%q at offset %d", string(s[i]), i)
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
func isDigit(b byte) bool  { return b >= '0' && b <= '9' }
