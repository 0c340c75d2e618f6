package postgres

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/strata-events/strata/internal/eventstore"
)

// cursor is the state behind an eventstore.Cursor: the batch being read,
// (a, b] — the transactions visible in b and not in a — and the last event
// returned from the slice of it being read: its position and its
// transaction id, since a slice is read in (transaction id, position)
// order. after is 0 at the start of a slice.
//
// category binds the cursor to the read it came from ("" for $all): slices
// are cut by counting that read's rows, so a cursor continues only its own
// read. epoch binds it to the store's transaction-id baseline, and anchor
// to the history it was read from (see anchor).
type cursor struct {
	epoch    int64
	category string
	a, b     snapshot
	anchor   anchor
	after    int64
	afterTx  uint64
	// byPosition marks a cursor of an earlier format in the middle of a
	// slice, which was read in position order until then: it reads the rest
	// of the slice in that order, and takes the new order at the next one.
	byPosition bool
	// legacy marks a cursor of the first format, which has no anchor; it
	// keeps that format until it moves to a new snapshot.
	legacy bool
}

// anchor is an event that a cursor's snapshots claim nothing beyond: every
// transaction they count as seen has an id no greater than the anchor's.
// Snapshots are cut down to the last event they see (snapshot.cut at its
// id + 1, which changes none of the events they see), so that a cursor
// claims only ids that a stored event proves were issued, never those the
// server handed out afterwards to transactions that wrote nothing.
//
// A server that stands at an earlier point of its history — a promoted
// asynchronous replica, a point-in-time restore — issues again the ids
// it had issued after that point. Events written with them would be
// skipped by a cursor that counts them as seen. If the cursor's anchor is
// still stored, the server's history holds its commit, so every id it
// issues now is above the anchor's, and none is claimed; if it is not,
// the cursor is refused. The zero anchor (position 0) belongs to snapshots
// that see no event.
type anchor struct {
	position int64
	id       eventstore.UUID
}

// The formats: the first has no anchor, the second has one, and the
// third adds the transaction id of the event at after, and a flag byte
// saying whether it has an anchor. A cursor at the start of a slice (after
// is 0), or reading its slice in position order, keeps the format it came
// in; one in the middle of a slice read in the new order takes the third.
const (
	cursorV1 = 1
	cursorV2 = 2
	cursorV3 = 3
)

// encode returns the cursor as an opaque, URL-safe string.
func (c cursor) encode() eventstore.Cursor {
	version := byte(cursorV2)
	switch {
	case c.after != 0 && !c.byPosition:
		version = cursorV3
	case c.legacy:
		version = cursorV1
	}
	buf := []byte{version}
	if version == cursorV3 {
		buf = append(buf, boolByte(c.legacy))
	}
	buf = binary.AppendUvarint(buf, uint64(c.epoch))
	buf = binary.AppendUvarint(buf, uint64(len(c.category)))
	buf = append(buf, c.category...)
	buf = appendSnapshot(buf, c.a)
	buf = appendSnapshot(buf, c.b)
	if !c.legacy {
		buf = binary.AppendUvarint(buf, uint64(c.anchor.position))
		if c.anchor.position != 0 {
			buf = append(buf, c.anchor.id[:]...)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(c.after))
	if version == cursorV3 {
		buf = binary.AppendUvarint(buf, c.afterTx)
	}
	return eventstore.Cursor(base64.RawURLEncoding.EncodeToString(buf))
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// appendSnapshot writes xmin, xmax-xmin, the number of running transactions
// and each as the gap from the one before (from xmin for the first).
func appendSnapshot(buf []byte, s snapshot) []byte {
	buf = binary.AppendUvarint(buf, s.xmin)
	buf = binary.AppendUvarint(buf, s.xmax-s.xmin)
	buf = binary.AppendUvarint(buf, uint64(len(s.xip)))
	prev := s.xmin
	for _, x := range s.xip {
		buf = binary.AppendUvarint(buf, x-prev)
		prev = x
	}
	return buf
}

// decodeCursor parses and checks a cursor for a read of category ("" for
// $all) from a store at epoch. The empty cursor is the beginning.
func decodeCursor(s eventstore.Cursor, category string, epoch int64) (cursor, error) {
	if s == "" {
		return cursor{epoch: epoch, category: category, a: origin, b: origin}, nil
	}
	c, err := parseCursor(string(s))
	if err != nil {
		return cursor{}, eventstore.Errorf(eventstore.CodeInvalidRequest, "invalid position token: %v", err)
	}
	switch {
	case c.category != category && category == "":
		return cursor{}, eventstore.Errorf(eventstore.CodeInvalidRequest, "the position token belongs to a read of category %s, not of all events", c.category)
	case c.category != category:
		return cursor{}, eventstore.Errorf(eventstore.CodeInvalidRequest, "the position token belongs to a read of %s, not of category %s", readName(c.category), category)
	case c.epoch < epoch:
		return cursor{}, errEpoch(c.epoch, epoch)
	}
	// A later epoch than this process knows is checked against the
	// store's by the read (see readSlice): another process may have
	// re-baselined it.
	return c, nil
}

// errEpoch refuses a cursor of another epoch than the store's.
func errEpoch(cursor, store int64) error {
	if cursor > store {
		return eventstore.Errorf(eventstore.CodeInvalidRequest,
			"invalid position token: it is of epoch %d, and this store is at epoch %d (the token is from another store)", cursor, store)
	}
	return eventstore.Errorf(eventstore.CodeInvalidRequest,
		"the position token was issued before the store was re-baselined (epoch %d, now %d); read again from the beginning", cursor, store)
}

func readName(category string) string {
	if category == "" {
		return "all events"
	}
	return "category " + category
}

var errTruncated = errors.New("it is truncated")

func parseCursor(s string) (cursor, error) {
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errors.New("it is not base64url")
	}
	if len(buf) == 0 || buf[0] < cursorV1 || buf[0] > cursorV3 {
		return cursor{}, errors.New("unknown format")
	}
	version := buf[0]
	r := reader{buf: buf[1:]}
	c := cursor{legacy: version == cursorV1}
	if version == cursorV3 {
		switch flag := r.bytes(1); {
		case r.err != nil:
		case flag[0] > 1:
			return cursor{}, errors.New("unknown flags")
		default:
			c.legacy = flag[0] == 1
		}
	}
	c.epoch = int64(r.uvarint())
	n := r.uvarint()
	if n > eventstore.MaxCategoryLength {
		return cursor{}, errors.New("category too long")
	}
	c.category = string(r.bytes(int(n)))
	c.a = r.snapshot()
	c.b = r.snapshot()
	if !c.legacy {
		c.anchor.position = int64(r.uvarint())
		if c.anchor.position != 0 {
			copy(c.anchor.id[:], r.bytes(len(c.anchor.id)))
		}
	}
	c.after = int64(r.uvarint())
	if version == cursorV3 {
		c.afterTx = r.uvarint()
	} else {
		c.byPosition = c.after != 0
	}
	if r.err != nil {
		return cursor{}, r.err
	}
	if len(r.buf) != 0 {
		return cursor{}, errors.New("it has trailing bytes")
	}
	if c.category != "" {
		if err := eventstore.ValidateCategory(c.category); err != nil {
			return cursor{}, err
		}
	}
	for _, s := range []snapshot{c.a, c.b} {
		if err := s.validate(); err != nil {
			return cursor{}, err
		}
	}
	if !c.a.containedIn(c.b) {
		return cursor{}, fmt.Errorf("its snapshots are out of order")
	}
	if c.after < 0 || c.anchor.position < 0 {
		return cursor{}, errors.New("negative position")
	}
	if !c.legacy && c.anchor.position == 0 && c.b.xmax != origin.xmax {
		return cursor{}, errors.New("its snapshot has no anchor")
	}
	// Every cursor has one spelling; refusing the others (padding bits,
	// overlong varints) keeps equal cursors equal as strings.
	if string(c.encode()) != s {
		return cursor{}, errors.New("it is not in canonical form")
	}
	return c, nil
}

// reader decodes uvarints, remembering the first error.
type reader struct {
	buf []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.buf) {
		r.err = errTruncated
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

// maxXip bounds the running transactions a cursor may list; PostgreSQL's
// own bound is max_connections plus prepared transactions.
const maxXip = 1 << 16

func (r *reader) snapshot() snapshot {
	var s snapshot
	s.xmin = r.uvarint()
	span := r.uvarint()
	s.xmax = s.xmin + span
	if s.xmax < s.xmin {
		r.err = errors.New("snapshot overflows")
		return s
	}
	n := r.uvarint()
	if n > maxXip || n > span {
		if r.err == nil {
			r.err = errors.New("snapshot lists too many transactions")
		}
		return s
	}
	prev := s.xmin
	for i := uint64(0); i < n && r.err == nil; i++ {
		x := prev + r.uvarint()
		if x < prev {
			r.err = errors.New("snapshot overflows")
			return s
		}
		s.xip = append(s.xip, x)
		prev = x
	}
	return s
}
