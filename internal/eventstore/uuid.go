package eventstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// UUID is an event id, an RFC 9562 UUID. The zero value is the nil UUID,
// which means "no id given": the store then makes a version 7 UUID.
type UUID [16]byte

// NewUUIDv7 returns a version 7 UUID: 48 bits of Unix milliseconds, then
// random bits, so ids made later sort later and index well.
func NewUUIDv7() UUID {
	var u UUID
	rand.Read(u[6:]) // never fails (crypto/rand's documented promise)
	ms := uint64(time.Now().UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[:6], ts[2:])
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}

// ParseUUID accepts the canonical 36-character form, in either case.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, Errorf(CodeInvalidRequest, "invalid uuid %q: want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	src := []byte(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if _, err := hex.Decode(u[:], src); err != nil {
		return UUID{}, Errorf(CodeInvalidRequest, "invalid uuid %q: it has a character that is not hexadecimal", s)
	}
	return u, nil
}

// IsZero reports whether u is the nil UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// String returns the canonical lower-case form.
func (u UUID) String() string {
	var b [36]byte
	t, _ := u.AppendText(b[:0])
	return string(t)
}

// AppendText appends the canonical lower-case form to b; it never fails.
func (u UUID) AppendText(b []byte) ([]byte, error) {
	n := len(b)
	b = append(b, make([]byte, 36)...)
	t := b[n:]
	hex.Encode(t[0:8], u[0:4])
	t[8] = '-'
	hex.Encode(t[9:13], u[4:6])
	t[13] = '-'
	hex.Encode(t[14:18], u[6:8])
	t[18] = '-'
	hex.Encode(t[19:23], u[8:10])
	t[23] = '-'
	hex.Encode(t[24:], u[10:])
	return b, nil
}

// MarshalText makes UUID a JSON string.
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText parses the canonical form.
func (u *UUID) UnmarshalText(b []byte) error {
	v, err := ParseUUID(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}
