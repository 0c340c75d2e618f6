package eventstore

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Written names an event that an append stored, for read-your-writes: a
// projection that has applied it has applied every earlier event of its
// stream. Its token is the position an append answers, which a read API
// takes as waitForPosition; it is not a read cursor.
type Written struct {
	Stream   StreamID
	Version  int64
	Position int64 // the event's global position, for reference
}

const writtenTokenVersion = 1

// Token returns w as an opaque, URL-safe string.
func (w Written) Token() string {
	s := w.Stream.String()
	buf := []byte{writtenTokenVersion}
	buf = binary.AppendUvarint(buf, uint64(w.Version))
	buf = binary.AppendUvarint(buf, uint64(w.Position))
	buf = append(buf, s...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// ParseWrittenToken reads a token made by Written.Token; its errors are
// invalid_request.
func ParseWrittenToken(token string) (Written, error) {
	w, err := parseWritten(token)
	if err != nil {
		return Written{}, Errorf(CodeInvalidRequest, "invalid position token %q: %v; use the position an append answered", token, err)
	}
	return w, nil
}

func parseWritten(token string) (Written, error) {
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Written{}, errors.New("it is not base64url")
	}
	if len(buf) == 0 || buf[0] != writtenTokenVersion {
		return Written{}, errors.New("unknown format")
	}
	buf = buf[1:]
	var n [2]uint64
	for i := range n {
		v, size := binary.Uvarint(buf)
		if size <= 0 || v > 1<<62 {
			return Written{}, errors.New("truncated")
		}
		n[i], buf = v, buf[size:]
	}
	if n[0] < 1 || n[1] < 1 {
		return Written{}, errors.New("no event")
	}
	stream, err := ParseStreamID(string(buf))
	if err != nil {
		return Written{}, fmt.Errorf("its stream: %w", err)
	}
	w := Written{Stream: stream, Version: int64(n[0]), Position: int64(n[1])}
	if w.Token() != token {
		return Written{}, errors.New("it is not in canonical form")
	}
	return w, nil
}
