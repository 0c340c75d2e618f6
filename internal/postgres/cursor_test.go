package postgres

import (
	"encoding/base64"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func TestSnapshotCut(t *testing.T) {
	b := snapshot{xmin: 100, xmax: 200, xip: []uint64{100, 150, 190}}
	tests := []struct {
		x    uint64
		want snapshot
	}{
		{250, b},
		{200, b},
		{160, snapshot{xmin: 100, xmax: 160, xip: []uint64{100, 150}}},
		{100, snapshot{xmin: 100, xmax: 100}},
		{50, snapshot{xmin: 50, xmax: 50}},
	}
	for _, tt := range tests {
		got := b.cut(tt.x)
		if !got.equal(tt.want) {
			t.Errorf("%s cut at %d = %s, want %s", b, tt.x, got, tt.want)
		}
		if err := got.validate(); err != nil {
			t.Errorf("%s cut at %d = %s, invalid: %v", b, tt.x, got, err)
		}
		for x := uint64(1); x < 260; x++ {
			if visible(got, x) && (!visible(b, x) || x >= tt.x) {
				t.Fatalf("cut at %d sees %d, which %s does not or which is beyond the cut", tt.x, x, b)
			}
			if !visible(got, x) && visible(b, x) && x < tt.x {
				t.Fatalf("cut at %d misses %d, which %s sees", tt.x, x, b)
			}
		}
	}
}

// visible is pg_visible_in_snapshot.
func visible(s snapshot, x uint64) bool {
	if x < s.xmin {
		return true
	}
	if x >= s.xmax {
		return false
	}
	for _, r := range s.xip {
		if r == x {
			return false
		}
	}
	return true
}

func TestSnapshotContainedIn(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1:1:", "5:9:6", true},
		{"5:9:6", "5:12:6,10", true},
		{"5:9:6", "7:12:7", false}, // 7 finished in a, running in b
		{"5:12:", "5:9:", false},   // b older than a
		{"5:9:5,6", "6:12:6", true},
	}
	for _, tt := range tests {
		a, _ := parseSnapshot(tt.a)
		b, _ := parseSnapshot(tt.b)
		if got := a.containedIn(b); got != tt.want {
			t.Errorf("%s containedIn %s = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseSnapshotRefusesMalformedText(t *testing.T) {
	for _, s := range []string{"", "1:2", "a:2:", "5:3:", "1:9:9", "1:9:4,3", "1:9:0", "0:0:", "1:9:4,,5"} {
		if _, err := parseSnapshot(s); err == nil {
			t.Errorf("parseSnapshot(%q) = nil error", s)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	tests := []cursor{
		{epoch: 1, a: origin, b: origin},
		{epoch: 3, category: "Order", a: snapshot{xmin: 700, xmax: 750, xip: []uint64{700, 742}}, b: snapshot{xmin: 742, xmax: 900, xip: []uint64{742, 899}},
			anchor: anchor{position: 12400, id: eventstore.NewUUIDv7()}, after: 12345, afterTx: 745},
		{epoch: 1 << 40, category: "C", a: snapshot{xmin: 1 << 50, xmax: 1<<50 + 1}, b: snapshot{xmin: 1 << 50, xmax: 1<<50 + 10},
			anchor: anchor{position: 1<<62 + 5, id: eventstore.NewUUIDv7()}, after: 1 << 62, afterTx: 1<<50 + 3},
		// At the start of a slice: the second format.
		{epoch: 3, a: snapshot{xmin: 700, xmax: 750}, b: snapshot{xmin: 742, xmax: 900}, anchor: anchor{position: 12400, id: eventstore.NewUUIDv7()}},
		// The second format in the middle of a slice, read by position.
		{epoch: 3, a: snapshot{xmin: 700, xmax: 750}, b: snapshot{xmin: 742, xmax: 900},
			anchor: anchor{position: 12400, id: eventstore.NewUUIDv7()}, after: 12345, byPosition: true},
		// The first format, without an anchor, read by position, and at
		// the start of a slice.
		{epoch: 2, a: snapshot{xmin: 5, xmax: 9}, b: snapshot{xmin: 9, xmax: 20}, after: 3, legacy: true, byPosition: true},
		{epoch: 2, a: snapshot{xmin: 5, xmax: 9}, b: snapshot{xmin: 9, xmax: 20}, legacy: true},
		// Without an anchor, in the middle of a slice read in the new order.
		{epoch: 2, a: snapshot{xmin: 5, xmax: 9}, b: snapshot{xmin: 9, xmax: 20}, after: 3, afterTx: 12, legacy: true},
	}
	for _, c := range tests {
		enc := c.encode()
		got, err := decodeCursor(enc, c.category, c.epoch)
		if err != nil {
			t.Fatalf("decode(encode(%+v)) = %v", c, err)
		}
		if diff := cmp.Diff(c, got, cmp.AllowUnexported(cursor{}, snapshot{}, anchor{})); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestCursorOfAnotherEpochIsRefused(t *testing.T) {
	c := cursor{epoch: 1, a: origin, b: origin}
	_, err := decodeCursor(c.encode(), "", 2)
	if eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest {
		t.Errorf("decodeCursor(epoch 1) in epoch 2 = %v, want invalid_position", err)
	}
}

// FuzzDecodeCursor feeds arbitrary tokens: decoding never panics, and what
// it accepts is a valid cursor that encodes back to the same token.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(string(cursor{epoch: 1, a: origin, b: origin}.encode()))
	f.Add(string(cursor{epoch: 2, category: "Order", a: snapshot{xmin: 5, xmax: 9, xip: []uint64{6}}, b: snapshot{xmin: 6, xmax: 20, xip: []uint64{6, 15}},
		anchor: anchor{position: 80, id: eventstore.UUID{1, 2, 3}}, after: 77, afterTx: 10}.encode()))
	f.Add(string(cursor{epoch: 2, category: "Order", a: snapshot{xmin: 5, xmax: 9, xip: []uint64{6}}, b: snapshot{xmin: 6, xmax: 20, xip: []uint64{6, 15}},
		anchor: anchor{position: 80, id: eventstore.UUID{1, 2, 3}}, after: 77, byPosition: true}.encode()))
	f.Add(string(cursor{epoch: 2, a: snapshot{xmin: 5, xmax: 9}, b: snapshot{xmin: 9, xmax: 20}, after: 3, legacy: true, byPosition: true}.encode()))
	f.Add(string(cursor{epoch: 2, a: snapshot{xmin: 5, xmax: 9}, b: snapshot{xmin: 9, xmax: 20}, after: 3, afterTx: 12, legacy: true}.encode()))
	f.Add("")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte{1, 1, 0, 5, 4, 1, 1}))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := parseCursor(token)
		if err != nil {
			return
		}
		if err := c.a.validate(); err != nil {
			t.Fatalf("accepted %q with invalid a: %v", token, err)
		}
		if err := c.b.validate(); err != nil {
			t.Fatalf("accepted %q with invalid b: %v", token, err)
		}
		if !c.a.containedIn(c.b) {
			t.Fatalf("accepted %q whose snapshots are out of order", token)
		}
		if again := string(c.encode()); again != token {
			t.Fatalf("accepted %q, which encodes back as %q", token, again)
		}
	})
}

// A slice is read in transaction id order, and a cursor of an earlier
// format, in the middle of a slice, reads the rest of it in position
// order, the order it began the slice in.
func TestACursorOfTheSecondFormatReadsOnByPosition(t *testing.T) {
	s := newStore(t, Options{})
	storetest.MustAppend(t, s, "Order-1", eventstore.NoStream, storetest.Events(1, "first")...) // position 1
	// A transaction that takes its id, then stores its event (position 3)
	// only after another transaction stored one (position 2) and committed.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	storetest.MustAppend(t, s, "Order-2", eventstore.NoStream, storetest.Events(1, "later id")...)
	if _, err := appendIn(ctx, tx, sid("Order-3"), eventstore.NoStream, false, eventstore.AssignIDs(storetest.Events(1, "earlier id"))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.MustAppend(t, s, "Order-4", eventstore.NoStream, storetest.Events(1, "last")...) // position 4

	positions := func(events []eventstore.RecordedEvent) (out []int64) {
		for _, e := range events {
			out = append(out, e.GlobalPosition)
		}
		return out
	}
	for _, category := range []string{"", "Order"} {
		name := readName(category)
		all, err := readPage(s, category, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := positions(all.Events); !slices.Equal(got, []int64{1, 3, 2, 4}) {
			t.Errorf("%s: read positions %v, want the transaction id order 1, 3, 2, 4", name, got)
		}
		first, err := readPage(s, category, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		c, err := decodeCursor(first.Next, category, 1)
		if err != nil || c.after != 1 || c.byPosition {
			t.Fatalf("%s: the cursor after one event = %+v, %v; want one in the middle of a slice, in the new order", name, c, err)
		}
		// The cursor an earlier version gave after positions 1 and 2.
		c.after, c.afterTx, c.byPosition = 2, 0, true
		old := c.encode()
		if raw, _ := base64.RawURLEncoding.DecodeString(string(old)); raw[0] != cursorV2 {
			t.Fatalf("a cursor read by position encodes in format %d, want %d", raw[0], cursorV2)
		}
		rest, err := readPage(s, category, old, 10)
		if err != nil {
			t.Fatalf("%s from a cursor of the second format: %v", name, err)
		}
		if got := positions(rest.Events); !slices.Equal(got, []int64{3, 4}) {
			t.Errorf("%s from a cursor of the second format after position 2: read %v, want 3, 4", name, got)
		}
	}
}
