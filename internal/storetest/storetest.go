// Package storetest is the conformance suite that every eventstore.Store
// must pass. A store joins it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) eventstore.Store { return newEmptyStore(t) })
//	}
//
// The suite checks the hard semantics: expected versions, atomic
// multi-event appends that store nothing on failure, idempotent retries,
// paged reads, cursors that continue exactly where they stopped, cancelled
// contexts, contention, and bad input that changes nothing.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/strata-events/strata/internal/eventstore"
)

// NewStore returns a new, empty store for one test; the harness closes it
// with t.Cleanup.
type NewStore func(t *testing.T) eventstore.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore NewStore) {
	t.Run("expected versions", func(t *testing.T) { testExpectedVersions(t, newStore) })
	t.Run("appends get consecutive versions and increasing positions", func(t *testing.T) { testConsecutive(t, newStore) })
	t.Run("a failing multi-event append stores nothing", func(t *testing.T) { testFailingAppend(t, newStore) })
	t.Run("retries with the same ids are idempotent", func(t *testing.T) { testIdempotency(t, newStore) })
	t.Run("duplicate event ids conflict", func(t *testing.T) { testDuplicates(t, newStore) })
	t.Run("events keep their data and metadata", func(t *testing.T) { testRoundTrip(t, newStore) })
	t.Run("stream reads page forward and backward", func(t *testing.T) { testReadStream(t, newStore) })
	t.Run("all and category reads page by cursor", func(t *testing.T) { testReadAll(t, newStore) })
	t.Run("cursors are checked", func(t *testing.T) { testBadCursors(t, newStore) })
	t.Run("cancelled contexts store nothing", func(t *testing.T) { testCancelled(t, newStore) })
	t.Run("bad input is refused and changes nothing", func(t *testing.T) { testBadInput(t, newStore) })
	t.Run("contended appends have one winner per version", func(t *testing.T) { testContention(t, newStore) })
	t.Run("contended appends with any all succeed", func(t *testing.T) { testContentionAny(t, newStore) })
}

var ctx = context.Background()

// Event returns an event of type typ whose data is the bytes of data.
func Event(typ, data string) eventstore.EventData {
	return eventstore.EventData{Type: typ, Schema: 0x1234abcd, Data: []byte(data)}
}

// Events returns n events "E" with data "prefix-0", "prefix-1", ...
func Events(n int, prefix string) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = Event("E", fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// MustAppend appends and fails the test on error.
func MustAppend(t testing.TB, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, eventstore.MustParseStreamID(stream), expected, events)
	if err != nil {
		t.Fatalf("Append(%s, %s, %d events) = %v", stream, expected, len(events), err)
	}
	return res
}

// ReadAllEvents reads $all (or one category) to the end in pages of limit
// and returns every event and the final cursor.
func ReadAllEvents(t testing.TB, s eventstore.Store, category string, after eventstore.Cursor, limit int) ([]eventstore.RecordedEvent, eventstore.Cursor) {
	t.Helper()
	var all []eventstore.RecordedEvent
	for i := 0; ; i++ {
		page, err := readPage(s, category, after, limit)
		if err != nil {
			t.Fatalf("read %q after %q: %v", category, after, err)
		}
		all = append(all, page.Events...)
		after = page.Next
		if len(page.Events) == 0 {
			return all, after
		}
		if i > 100000 {
			t.Fatalf("read %q never ended", category)
		}
	}
}

func readPage(s eventstore.Store, category string, after eventstore.Cursor, limit int) (eventstore.Page, error) {
	if category == "" {
		return s.ReadAll(ctx, after, limit)
	}
	return s.ReadCategory(ctx, category, after, limit)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := eventstore.ErrorCode(err); got != code {
		t.Errorf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

func streamVersion(t *testing.T, s eventstore.Store, stream string) int64 {
	t.Helper()
	page, err := s.ReadStream(ctx, eventstore.MustParseStreamID(stream), eventstore.StreamQuery{Limit: 1})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("ReadStream(%s): %v", stream, err)
	}
	return page.Version
}

func countAll(t *testing.T, s eventstore.Store) int {
	t.Helper()
	all, _ := ReadAllEvents(t, s, "", "", eventstore.MaxReadLimit)
	return len(all)
}

func testExpectedVersions(t *testing.T, newStore NewStore) {
	tests := []struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedVersion
		actual   int64 // 0 when the append must succeed
	}{
		{"any creates a new stream", 0, eventstore.Any, -1},
		{"any appends to an existing stream", 3, eventstore.Any, -1},
		{"no stream creates a new stream", 0, eventstore.NoStream, -1},
		{"no stream fails on an existing stream", 3, eventstore.NoStream, 3},
		{"stream exists fails on a new stream", 0, eventstore.StreamExists, 0},
		{"stream exists appends to an existing stream", 3, eventstore.StreamExists, -1},
		{"the exact version appends", 3, 3, -1},
		{"a version too low fails", 3, 2, 3},
		{"a version too high fails", 3, 4, 3},
		{"an exact version fails on a new stream", 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			const stream = "Order-x1"
			if tt.existing > 0 {
				MustAppend(t, s, stream, eventstore.NoStream, Events(tt.existing, "old")...)
			}
			res, err := s.Append(ctx, eventstore.MustParseStreamID(stream), tt.expected, Events(2, "new"))
			if tt.actual < 0 {
				if err != nil {
					t.Fatalf("Append(expected %s) on a stream at %d = %v, want success", tt.expected, tt.existing, err)
				}
				if res.FirstVersion != int64(tt.existing)+1 || res.LastVersion != int64(tt.existing)+2 || res.Replayed {
					t.Errorf("Append = versions %d..%d replayed %v, want %d..%d not replayed", res.FirstVersion, res.LastVersion, res.Replayed, tt.existing+1, tt.existing+2)
				}
				return
			}
			var wrong *eventstore.WrongExpectedVersionError
			if !errors.As(err, &wrong) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Fatalf("Append(expected %s) on a stream at %d = %v, want *WrongExpectedVersionError", tt.expected, tt.existing, err)
			}
			if wrong.Expected != tt.expected || wrong.Actual != tt.actual || wrong.Stream.String() != stream {
				t.Errorf("error = %+v, want expected %s actual %d stream %s", wrong, tt.expected, tt.actual, stream)
			}
			if got := streamVersion(t, s, stream); got != int64(tt.existing) {
				t.Errorf("after the failed append the stream is at %d, want %d", got, tt.existing)
			}
		})
	}
}

func testConsecutive(t *testing.T, newStore NewStore) {
	s := newStore(t)
	a := MustAppend(t, s, "Order-1", eventstore.NoStream, Events(3, "a")...)
	b := MustAppend(t, s, "Order-1", 3, Events(2, "b")...)
	c := MustAppend(t, s, "Customer-1", eventstore.Any, Events(1, "c")...)
	var last int64
	for _, res := range []eventstore.AppendResult{a, b, c} {
		if int64(len(res.Events)) != res.LastVersion-res.FirstVersion+1 {
			t.Errorf("result %+v: %d events for versions %d..%d", res, len(res.Events), res.FirstVersion, res.LastVersion)
		}
		for i, e := range res.Events {
			if e.Version != res.FirstVersion+int64(i) {
				t.Errorf("event %d has version %d, want %d", i, e.Version, res.FirstVersion+int64(i))
			}
			if e.GlobalPosition <= last {
				t.Errorf("event %s has position %d, not after %d", e.ID, e.GlobalPosition, last)
			}
			if e.ID.IsZero() {
				t.Errorf("event %d got no id", i)
			}
			last = e.GlobalPosition
		}
	}
	if b.FirstVersion != 4 || b.LastVersion != 5 {
		t.Errorf("second append = %d..%d, want 4..5", b.FirstVersion, b.LastVersion)
	}
}

func testFailingAppend(t *testing.T, newStore NewStore) {
	s := newStore(t)
	taken := MustAppend(t, s, "Order-1", eventstore.NoStream, Event("E", "first")).Events[0].ID

	// The last of five events reuses a stored id: none of the five is stored.
	batch := Events(5, "batch")
	batch[4].ID = taken
	_, err := s.Append(ctx, eventstore.MustParseStreamID("Order-2"), eventstore.Any, batch)
	if !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("Append with a stored id = %v, want duplicate_event_id", err)
	}
	// A wrong version on a multi-event append stores nothing either.
	_, err = s.Append(ctx, eventstore.MustParseStreamID("Order-1"), 7, Events(5, "late"))
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("Append at a wrong version = %v, want wrong_expected_version", err)
	}
	if v := streamVersion(t, s, "Order-2"); v != 0 {
		t.Errorf("Order-2 is at version %d after a failed append, want absent", v)
	}
	if v := streamVersion(t, s, "Order-1"); v != 1 {
		t.Errorf("Order-1 is at version %d after a failed append, want 1", v)
	}
	if n := countAll(t, s); n != 1 {
		t.Errorf("$all holds %d events, want 1", n)
	}
	// The stream is usable afterwards, at the next version.
	res := MustAppend(t, s, "Order-1", 1, Events(5, "ok")...)
	if res.FirstVersion != 2 || res.LastVersion != 6 {
		t.Errorf("append after failures = %d..%d, want 2..6", res.FirstVersion, res.LastVersion)
	}
}

func testIdempotency(t *testing.T, newStore NewStore) {
	tests := []struct {
		name     string
		expected eventstore.ExpectedVersion
	}{
		{"with no stream", eventstore.NoStream},
		{"with any", eventstore.Any},
		{"with an exact version", 2},
		{"with stream exists", eventstore.StreamExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			stream := "Order-idem"
			if tt.expected != eventstore.NoStream {
				MustAppend(t, s, stream, eventstore.NoStream, Events(2, "before")...)
			}
			events := eventstore.AssignIDs(Events(3, "e"))
			first := MustAppend(t, s, stream, tt.expected, events...)
			if first.Replayed {
				t.Fatalf("first append reported Replayed")
			}
			again, err := s.Append(ctx, eventstore.MustParseStreamID(stream), tt.expected, events)
			if err != nil {
				t.Fatalf("retry = %v, want the first result", err)
			}
			if !again.Replayed {
				t.Errorf("retry not reported as Replayed")
			}
			again.Replayed = false
			if diff := cmp.Diff(first, again, cmp.Comparer(streamIDEqual)); diff != "" {
				t.Errorf("retry result differs (-first +retry):\n%s", diff)
			}
			// A retry of the first events alone is the same append too.
			sub, err := s.Append(ctx, eventstore.MustParseStreamID(stream), tt.expected, events[:1])
			if err != nil || sub.FirstVersion != first.FirstVersion || sub.LastVersion != first.FirstVersion {
				t.Errorf("retry of the first event = %+v, %v; want version %d", sub, err, first.FirstVersion)
			}
			want := first.LastVersion
			if got := streamVersion(t, s, stream); got != want {
				t.Errorf("stream at version %d after retries, want %d", got, want)
			}
			if n := countAll(t, s); int64(n) != want {
				t.Errorf("$all holds %d events after retries, want %d", n, want)
			}
		})
	}
}

func streamIDEqual(a, b eventstore.StreamID) bool { return a == b }

func testDuplicates(t *testing.T, newStore NewStore) {
	// wantStored: the ids are all in place and only schemas or data
	// differ, so the error holds the stored events.
	tests := []struct {
		name       string
		mutate     func(stored []eventstore.EventData) (stream string, events []eventstore.EventData)
		wantStored bool
	}{
		{"an id used in another stream", func(st []eventstore.EventData) (string, []eventstore.EventData) {
			return "Order-other", st[:1]
		}, false},
		{"an id with different data", func(st []eventstore.EventData) (string, []eventstore.EventData) {
			e := st[0]
			e.Data = []byte("changed")
			return "Order-dup", []eventstore.EventData{e}
		}, true},
		{"ids with another schema and data", func(st []eventstore.EventData) (string, []eventstore.EventData) {
			a, b := st[0], st[1]
			a.Schema, b.Schema, b.Data = 0x99, 0x99, []byte("re-encoded")
			return "Order-dup", []eventstore.EventData{a, b}
		}, true},
		{"an id with a different type", func(st []eventstore.EventData) (string, []eventstore.EventData) {
			e := st[0]
			e.Type = "Other"
			return "Order-dup", []eventstore.EventData{e}
		}, false},
		{"stored ids mixed with new ones", func(st []eventstore.EventData) (string, []eventstore.EventData) {
			return "Order-dup", append([]eventstore.EventData{Event("E", "new")}, st...)
		}, false},
		{"stored ids in another order", func(st []eventstore.EventData) (string, []eventstore.EventData) {
			return "Order-dup", []eventstore.EventData{st[1], st[0]}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			stored := eventstore.AssignIDs(Events(2, "orig"))
			MustAppend(t, s, "Order-dup", eventstore.NoStream, stored...)
			stream, events := tt.mutate(stored)
			_, err := s.Append(ctx, eventstore.MustParseStreamID(stream), eventstore.Any, events)
			var dup *eventstore.DuplicateEventIDError
			if !errors.As(err, &dup) {
				t.Fatalf("Append = %v, want *DuplicateEventIDError", err)
			}
			if dup.Stream.String() != "Order-dup" {
				t.Errorf("duplicate names stream %s, want Order-dup", dup.Stream)
			}
			if dup.ID != stored[0].ID && dup.ID != stored[1].ID {
				t.Errorf("duplicate names id %s, not one of the stored ids", dup.ID)
			}
			checkStored(t, dup.Stored, stored, events, tt.wantStored)
			if n := countAll(t, s); n != 2 {
				t.Errorf("$all holds %d events, want 2", n)
			}
		})
	}
}

// checkStored checks a duplicate's Stored: the stored events in the
// retry's order, as they were stored, when want; else none.
func checkStored(t *testing.T, got []eventstore.RecordedEvent, stored, retry []eventstore.EventData, want bool) {
	t.Helper()
	if !want {
		if len(got) != 0 {
			t.Errorf("the duplicate holds %d stored events, want none: the ids are not all in place", len(got))
		}
		return
	}
	if len(got) != len(retry) {
		t.Fatalf("the duplicate holds %d stored events, want the %d of the retry", len(got), len(retry))
	}
	for i, e := range retry {
		var orig eventstore.EventData
		version := int64(0)
		for j, st := range stored {
			if st.ID == e.ID {
				orig, version = st, int64(j+1)
			}
		}
		g := got[i]
		if g.ID != e.ID || g.StreamID.String() != "Order-dup" || g.Type != orig.Type || g.Version != version ||
			g.GlobalPosition == 0 || g.Schema != orig.Schema || string(g.Data) != string(orig.Data) {
			t.Errorf("Stored[%d] = %+v, want event %s as stored: version %d, schema %v, data %q", i, g, e.ID, version, orig.Schema, orig.Data)
		}
	}
}

func testRoundTrip(t *testing.T, newStore NewStore) {
	s := newStore(t)
	before := time.Now().Add(-time.Minute)
	in := eventstore.EventData{
		ID:     eventstore.NewUUIDv7(),
		Type:   "OrderCreated",
		Schema: 0xfedcba9876543210, // the top bit set: stored as a negative bigint
		Data:   []byte{0, 1, 2, 0xff, 0},
		Metadata: eventstore.Metadata{
			CorrelationID: "c-1", CausationID: "cmd-1", UserID: "u-9", TenantID: "t-1",
			Custom: map[string]string{"source": "web", "ünïcode": "✓"},
		},
	}
	MustAppend(t, s, "Order-rt", eventstore.NoStream, in, Event("Bare", ""))
	page, err := s.ReadStream(ctx, eventstore.MustParseStreamID("Order-rt"), eventstore.StreamQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Fatalf("read %d events, want 2", len(page.Events))
	}
	got := page.Events[0]
	want := eventstore.RecordedEvent{
		ID: in.ID, StreamID: eventstore.MustParseStreamID("Order-rt"), Type: in.Type, Version: 1,
		GlobalPosition: got.GlobalPosition, RecordedAt: got.RecordedAt, Schema: in.Schema, Data: in.Data, Metadata: in.Metadata,
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(streamIDEqual)); diff != "" {
		t.Errorf("stored event differs (-want +got):\n%s", diff)
	}
	if got.RecordedAt.Location() != time.UTC || got.RecordedAt.Before(before) || got.RecordedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("RecordedAt = %v, want about now, in UTC", got.RecordedAt)
	}
	bare := page.Events[1]
	if len(bare.Data) != 0 || !bare.Metadata.IsZero() {
		t.Errorf("event with empty data and metadata read back as %q, %+v", bare.Data, bare.Metadata)
	}
	all, _ := ReadAllEvents(t, s, "", "", 10)
	if diff := cmp.Diff(page.Events, all, cmp.Comparer(streamIDEqual)); diff != "" {
		t.Errorf("$all differs from the stream read (-stream +all):\n%s", diff)
	}
}

func versions(events []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

func testReadStream(t *testing.T, newStore NewStore) {
	s := newStore(t)
	MustAppend(t, s, "Order-r", eventstore.NoStream, Events(10, "r")...)
	MustAppend(t, s, "Order-other", eventstore.NoStream, Events(3, "o")...)
	stream := eventstore.MustParseStreamID("Order-r")
	tests := []struct {
		name string
		q    eventstore.StreamQuery
		want []int64
		next int64
	}{
		{"forward from the start", eventstore.StreamQuery{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 11},
		{"forward, a page", eventstore.StreamQuery{From: 3, Limit: 4}, []int64{3, 4, 5, 6}, 7},
		{"forward, the last page", eventstore.StreamQuery{From: 9, Limit: 4}, []int64{9, 10}, 11},
		{"forward past the end", eventstore.StreamQuery{From: 11}, nil, 11},
		{"forward far past the end", eventstore.StreamQuery{From: 50}, nil, 50},
		{"backward from the end", eventstore.StreamQuery{Direction: eventstore.Backward, Limit: 3}, []int64{10, 9, 8}, 7},
		{"backward, a page", eventstore.StreamQuery{Direction: eventstore.Backward, From: 5, Limit: 2}, []int64{5, 4}, 3},
		{"backward to the start", eventstore.StreamQuery{Direction: eventstore.Backward, From: 2}, []int64{2, 1}, 0},
		{"backward from past the end", eventstore.StreamQuery{Direction: eventstore.Backward, From: 99, Limit: 2}, []int64{10, 9}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.ReadStream(ctx, stream, tt.q)
			if err != nil {
				t.Fatalf("ReadStream(%+v) = %v", tt.q, err)
			}
			if diff := cmp.Diff(tt.want, versions(page.Events), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ReadStream(%+v) versions (-want +got):\n%s", tt.q, diff)
			}
			if page.Next != tt.next || page.Version != 10 {
				t.Errorf("ReadStream(%+v) next, version = %d, %d; want %d, 10", tt.q, page.Next, page.Version, tt.next)
			}
			for _, e := range page.Events {
				if e.StreamID != stream {
					t.Errorf("event of stream %s in a read of %s", e.StreamID, stream)
				}
			}
		})
	}
	t.Run("paging forward visits every event once", func(t *testing.T) {
		var got []int64
		for from := int64(1); ; {
			page, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{From: from, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) == 0 {
				break
			}
			got = append(got, versions(page.Events)...)
			from = page.Next
		}
		if diff := cmp.Diff([]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, got); diff != "" {
			t.Errorf("paged versions (-want +got):\n%s", diff)
		}
	})
	t.Run("a missing stream is not found", func(t *testing.T) {
		_, err := s.ReadStream(ctx, eventstore.MustParseStreamID("Order-missing"), eventstore.StreamQuery{})
		if !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("ReadStream(missing) = %v, want stream_not_found", err)
		}
	})
}

func ids(events []eventstore.RecordedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.StreamID.String() + "@" + fmt.Sprint(e.Version)
	}
	return out
}

func testReadAll(t *testing.T, newStore NewStore) {
	s := newStore(t)
	t.Run("an empty store reads empty", func(t *testing.T) {
		page, err := s.ReadAll(ctx, "", 10)
		if err != nil || len(page.Events) != 0 || page.Next == "" {
			t.Fatalf("ReadAll(empty) = %d events, next %q, %v; want none with a cursor", len(page.Events), page.Next, err)
		}
	})
	var want, wantOrders []string
	for i := 0; i < 7; i++ {
		for _, stream := range []string{"Order-a", "Customer-b", "Order-c"} {
			MustAppend(t, s, stream, eventstore.Any, Event("E", fmt.Sprint(i)))
			want = append(want, fmt.Sprintf("%s@%d", stream, i+1))
			if stream != "Customer-b" {
				wantOrders = append(wantOrders, fmt.Sprintf("%s@%d", stream, i+1))
			}
		}
	}
	for _, limit := range []int{1, 2, 5, 21, 1000} {
		t.Run(fmt.Sprintf("all in pages of %d", limit), func(t *testing.T) {
			got, _ := ReadAllEvents(t, s, "", "", limit)
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Errorf("$all (-want +got):\n%s", diff)
			}
		})
		t.Run(fmt.Sprintf("a category in pages of %d", limit), func(t *testing.T) {
			got, _ := ReadAllEvents(t, s, "Order", "", limit)
			if diff := cmp.Diff(wantOrders, ids(got)); diff != "" {
				t.Errorf("category Order (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("reading again from a cursor returns the same events", func(t *testing.T) {
		first, err := s.ReadAll(ctx, "", 4)
		if err != nil {
			t.Fatal(err)
		}
		mid, err := s.ReadAll(ctx, first.Next, 5)
		if err != nil {
			t.Fatal(err)
		}
		MustAppend(t, s, "Order-late", eventstore.Any, Event("E", "late"))
		again, err := s.ReadAll(ctx, first.Next, 5)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids(mid.Events), ids(again.Events)); diff != "" {
			t.Errorf("second read from the same cursor (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(want[4:9], ids(mid.Events)); diff != "" {
			t.Errorf("page after the cursor (-want +got):\n%s", diff)
		}
	})
	t.Run("a cursor at the head returns later events", func(t *testing.T) {
		_, head := ReadAllEvents(t, s, "Order", "", 100)
		MustAppend(t, s, "Order-new", eventstore.NoStream, Events(2, "n")...)
		MustAppend(t, s, "Customer-new", eventstore.NoStream, Events(1, "n")...)
		got, _ := ReadAllEvents(t, s, "Order", head, 100)
		if diff := cmp.Diff([]string{"Order-new@1", "Order-new@2"}, ids(got)); diff != "" {
			t.Errorf("events after the head (-want +got):\n%s", diff)
		}
	})
}

func testBadCursors(t *testing.T, newStore NewStore) {
	s := newStore(t)
	MustAppend(t, s, "Order-1", eventstore.NoStream, Events(3, "x")...)
	allPage, err := s.ReadAll(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	catPage, err := s.ReadCategory(ctx, "Order", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		category string
		cursor   eventstore.Cursor
	}{
		{"garbage", "", "not a cursor!"},
		{"base64 of nothing useful", "", "AAAA"},
		{"a truncated cursor", "", allPage.Next[:len(allPage.Next)/2]},
		{"a category cursor for $all", "", catPage.Next},
		{"an $all cursor for a category", "Order", allPage.Next},
		{"another category's cursor", "Customer", catPage.Next},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readPage(s, tt.category, tt.cursor, 10)
			wantCode(t, fmt.Sprintf("read %q after %q", tt.category, tt.cursor), err, eventstore.CodeInvalidRequest)
			if err != nil && !strings.Contains(err.Error(), "position token") {
				t.Errorf("error %q does not say the position token is at fault", err)
			}
		})
	}
}

func testCancelled(t *testing.T, newStore NewStore) {
	s := newStore(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Append(cctx, eventstore.MustParseStreamID("Order-c"), eventstore.Any, Events(3, "c"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Append(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.ReadStream(cctx, eventstore.MustParseStreamID("Order-c"), eventstore.StreamQuery{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadStream(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.ReadAll(cctx, "", 10); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll(cancelled) = %v, want context.Canceled", err)
	}
	if n := countAll(t, s); n != 0 {
		t.Errorf("$all holds %d events after a cancelled append, want 0", n)
	}
}

func testBadInput(t *testing.T, newStore NewStore) {
	s := newStore(t)
	MustAppend(t, s, "Order-1", eventstore.NoStream, Event("E", "keep"))
	dupID := eventstore.NewUUIDv7()
	good := eventstore.MustParseStreamID("Order-1")
	tests := []struct {
		name     string
		stream   eventstore.StreamID
		expected eventstore.ExpectedVersion
		events   []eventstore.EventData
		code     string
	}{
		{"the zero stream id", eventstore.StreamID{}, eventstore.Any, Events(1, "x"), eventstore.CodeInvalidStreamID},
		{"expected version -3", good, -3, Events(1, "x"), eventstore.CodeInvalidExpectedVersion},
		{"expected version -1000", good, -1000, Events(1, "x"), eventstore.CodeInvalidExpectedVersion},
		{"no events", good, eventstore.Any, nil, eventstore.CodeInvalidRequest},
		{"1001 events", good, eventstore.Any, Events(eventstore.MaxAppendEvents+1, "x"), eventstore.CodeTooLarge},
		{"an empty type", good, eventstore.Any, []eventstore.EventData{Event("", "x")}, eventstore.CodeInvalidRequest},
		{"a type with a dot", good, eventstore.Any, []eventstore.EventData{Event("a.B", "x")}, eventstore.CodeInvalidRequest},
		{"a type starting with a digit", good, eventstore.Any, []eventstore.EventData{Event("1A", "x")}, eventstore.CodeInvalidRequest},
		{"a type of 256 characters", good, eventstore.Any, []eventstore.EventData{Event(string(make([]byte, 256)), "x")}, eventstore.CodeInvalidRequest},
		{"one id twice", good, eventstore.Any, []eventstore.EventData{{ID: dupID, Type: "E"}, {ID: dupID, Type: "E"}}, eventstore.CodeInvalidRequest},
		{"a bad type after good events", good, eventstore.Any, append(Events(5, "x"), Event("bad type", "x")), eventstore.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(ctx, tt.stream, tt.expected, tt.events)
			wantCode(t, "Append", err, tt.code)
		})
	}
	reads := []struct {
		name string
		read func() error
		code string
	}{
		{"a stream read of the zero stream id", func() error {
			_, err := s.ReadStream(ctx, eventstore.StreamID{}, eventstore.StreamQuery{})
			return err
		}, eventstore.CodeInvalidStreamID},
		{"a negative limit", func() error {
			_, err := s.ReadStream(ctx, good, eventstore.StreamQuery{Limit: -1})
			return err
		}, eventstore.CodeInvalidRequest},
		{"a limit over the maximum", func() error {
			_, err := s.ReadAll(ctx, "", eventstore.MaxReadLimit+1)
			return err
		}, eventstore.CodeInvalidRequest},
		{"a negative from", func() error {
			_, err := s.ReadStream(ctx, good, eventstore.StreamQuery{From: -5})
			return err
		}, eventstore.CodeInvalidRequest},
		{"an unknown direction", func() error {
			_, err := s.ReadStream(ctx, good, eventstore.StreamQuery{Direction: 7})
			return err
		}, eventstore.CodeInvalidRequest},
		{"an invalid category", func() error {
			_, err := s.ReadCategory(ctx, "Or-der", "", 10)
			return err
		}, eventstore.CodeInvalidStreamID},
		{"an empty category", func() error {
			_, err := s.ReadCategory(ctx, "", "", 10)
			return err
		}, eventstore.CodeInvalidStreamID},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.name, tt.read(), tt.code) })
	}
	if n := countAll(t, s); n != 1 {
		t.Errorf("$all holds %d events after bad input, want 1", n)
	}
	if v := streamVersion(t, s, "Order-1"); v != 1 {
		t.Errorf("Order-1 at version %d after bad input, want 1", v)
	}
}

// testContention has 32 writers race, round after round, to append to one
// stream at the version they all read before the round: every round has
// exactly one winner, versions stay dense, every reported success is stored
// and every failure is absent.
func testContention(t *testing.T, newStore NewStore) {
	s := newStore(t)
	stream := eventstore.MustParseStreamID("Order-hot")
	won, lost := race(t, s, stream, func() (eventstore.ExpectedVersion, error) {
		page, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{Limit: 1})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return eventstore.NoStream, nil
		}
		return eventstore.ExpectedVersion(page.Version), err
	})
	checkDense(t, s, stream, won, lost)
	if len(won) != raceRounds || len(lost) != raceRounds*(raceWriters-1) {
		t.Errorf("%d appends won and %d lost, want one winner in each of %d rounds of %d", len(won), len(lost), raceRounds, raceWriters)
	}
}

// testContentionAny races writers that expect any version: all succeed.
func testContentionAny(t *testing.T, newStore NewStore) {
	s := newStore(t)
	stream := eventstore.MustParseStreamID("Order-any")
	won, lost := race(t, s, stream, func() (eventstore.ExpectedVersion, error) { return eventstore.Any, nil })
	if len(lost) != 0 || len(won) != raceRounds*raceWriters {
		t.Errorf("%d appends with any succeeded and %d failed, want all %d to succeed", len(won), len(lost), raceRounds*raceWriters)
	}
	checkDense(t, s, stream, won, nil)
}

const raceWriters, raceRounds = 32, 8

// race runs raceWriters writers for raceRounds rounds. In each round every
// writer asks expect for its expected version, all wait until all have, and
// then all append one event to stream at once. It returns the ids reported
// stored, by version, and the ids refused with a wrong expected version.
func race(t *testing.T, s eventstore.Store, stream eventstore.StreamID, expect func() (eventstore.ExpectedVersion, error)) (map[int64]eventstore.UUID, []eventstore.UUID) {
	t.Helper()
	var mu sync.Mutex
	won := map[int64]eventstore.UUID{}
	var lost []eventstore.UUID
	ready := make([]sync.WaitGroup, raceRounds) // all have read the version
	done := make([]sync.WaitGroup, raceRounds)  // all have appended
	for r := range ready {
		ready[r].Add(raceWriters)
		done[r].Add(raceWriters)
	}
	var wg sync.WaitGroup
	for w := 0; w < raceWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < raceRounds; r++ {
				expected, err := expect()
				ready[r].Done()
				ready[r].Wait()
				if err != nil {
					t.Errorf("reading the expected version: %v", err)
				} else {
					e := eventstore.AssignIDs([]eventstore.EventData{Event("E", fmt.Sprintf("w%d-r%d", w, r))})
					res, err := s.Append(ctx, stream, expected, e)
					mu.Lock()
					switch {
					case err == nil:
						if prev, dup := won[res.FirstVersion]; dup {
							t.Errorf("version %d won twice: %s and %s", res.FirstVersion, prev, e[0].ID)
						}
						won[res.FirstVersion] = e[0].ID
					case errors.Is(err, eventstore.ErrWrongExpectedVersion):
						lost = append(lost, e[0].ID)
					default:
						t.Errorf("Append at %s: %v", expected, err)
					}
					mu.Unlock()
				}
				done[r].Done()
				done[r].Wait()
			}
		}()
	}
	wg.Wait()
	return won, lost
}

// checkDense reads stream and checks that it holds exactly the winners, at
// versions 1..N, and none of the losers.
func checkDense(t *testing.T, s eventstore.Store, stream eventstore.StreamID, won map[int64]eventstore.UUID, lost []eventstore.UUID) {
	t.Helper()
	stored := map[eventstore.UUID]int64{}
	for from := int64(1); ; {
		page, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{From: from, Limit: eventstore.MaxReadLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if e.Version != int64(len(stored))+1 {
				t.Fatalf("stream holds version %d after %d events: versions are not dense", e.Version, len(stored))
			}
			stored[e.ID] = e.Version
		}
		if len(page.Events) == 0 {
			break
		}
		from = page.Next
	}
	if len(stored) != len(won) {
		t.Errorf("stream holds %d events, %d appends reported success", len(stored), len(won))
	}
	for v, id := range won {
		if got, ok := stored[id]; !ok || got != v {
			t.Errorf("event %s reported stored at version %d is at %d (present %v)", id, v, got, ok)
		}
	}
	for _, id := range lost {
		if v, ok := stored[id]; ok {
			t.Errorf("event %s of a failed append is stored at version %d", id, v)
		}
	}
}
