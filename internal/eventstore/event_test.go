package eventstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestExpectedVersion(t *testing.T) {
	tests := []struct {
		v      int64
		valid  bool
		allows map[int64]bool // actual version → allowed
	}{
		{-1, true, map[int64]bool{0: true, 1: true, 9: true}},
		{0, true, map[int64]bool{0: true, 1: false}},
		{-2, true, map[int64]bool{0: false, 1: true, 9: true}},
		{3, true, map[int64]bool{0: false, 2: false, 3: true, 4: false}},
		{-3, false, nil},
		{-1 << 63, false, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("expected %d", tt.v), func(t *testing.T) {
			e, err := ParseExpectedVersion(tt.v)
			if (err == nil) != tt.valid {
				t.Fatalf("ParseExpectedVersion(%d) = %v, want valid %v", tt.v, err, tt.valid)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidExpected) {
					t.Errorf("error %v is not ErrInvalidExpected", err)
				}
				return
			}
			for actual, want := range tt.allows {
				if got := e.Allows(actual); got != want {
					t.Errorf("%s.Allows(%d) = %v, want %v", e, actual, got, want)
				}
			}
		})
	}
}

func TestUUID(t *testing.T) {
	t.Run("v7 ids carry the version, the variant and the time", func(t *testing.T) {
		before := time.Now().UnixMilli()
		u := NewUUIDv7()
		after := time.Now().UnixMilli()
		if u[6]>>4 != 7 || u[8]>>6 != 2 {
			t.Errorf("%s: version %d variant %b, want 7 and 10", u, u[6]>>4, u[8]>>6)
		}
		ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
		if ms < before || ms > after {
			t.Errorf("%s: timestamp %d not within %d..%d", u, ms, before, after)
		}
		if NewUUIDv7() == u {
			t.Error("two v7 ids are equal")
		}
	})
	t.Run("parsing round-trips and accepts upper case", func(t *testing.T) {
		u := NewUUIDv7()
		for _, s := range []string{u.String(), strings.ToUpper(u.String())} {
			got, err := ParseUUID(s)
			if err != nil || got != u {
				t.Errorf("ParseUUID(%q) = %s, %v; want %s", s, got, err, u)
			}
		}
	})
	for _, bad := range []string{"", "not-a-uuid", "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8", "0190b1c43c1e7a6e9f0a3b2c1d0e9f8a", "0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8g", "{0190b1c4-3c1e-7a6e-9f0a-3b2c1d0e9f8a}"} {
		t.Run("refuses "+fmt.Sprintf("%q", bad), func(t *testing.T) {
			if _, err := ParseUUID(bad); ErrorCode(err) != CodeInvalidRequest {
				t.Errorf("ParseUUID(%q) = %v, want invalid_request", bad, err)
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	stream := MustParseStreamID("Order-1")
	tests := []struct {
		err      error
		code     string
		sentinel error
	}{
		{&WrongExpectedVersionError{Stream: stream, Expected: 3, Actual: 5}, CodeWrongExpectedVersion, ErrWrongExpectedVersion},
		{&DuplicateEventIDError{ID: NewUUIDv7(), Stream: stream}, CodeDuplicateEventID, ErrDuplicateEventID},
		{Errorf(CodeStreamNotFound, "stream %s not found", stream), CodeStreamNotFound, ErrStreamNotFound},
		{fmt.Errorf("read: %w", Errorf(CodeTooLarge, "big")), CodeTooLarge, ErrTooLarge},
		{errors.New("boom"), CodeInternal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
			}
			if tt.sentinel != nil && !errors.Is(tt.err, tt.sentinel) {
				t.Errorf("errors.Is(%v, sentinel %q) = false", tt.err, tt.code)
			}
			if errors.Is(tt.err, ErrUnavailable) {
				t.Errorf("errors.Is(%v, ErrUnavailable) = true", tt.err)
			}
		})
	}
	if got := (&WrongExpectedVersionError{Stream: stream, Expected: NoStream, Actual: 2}).Error(); !strings.Contains(got, "expected no stream, actual version 2") {
		t.Errorf("message %q does not say what was expected and found", got)
	}
}

func TestValidateAppendAcceptsAThousandEvents(t *testing.T) {
	events := make([]EventData, MaxAppendEvents)
	for i := range events {
		events[i] = EventData{Type: "OrderCreated"}
	}
	if err := ValidateAppend(MustParseStreamID("Order-1"), Any, events); err != nil {
		t.Errorf("ValidateAppend(1000 events) = %v", err)
	}
}
