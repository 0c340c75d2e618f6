package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"
)

// TailStore is a Store that subscriptions can follow.
type TailStore interface {
	eventstore.Store
	eventstore.Tailer
}

// RunTailer runs the Tailer's part of the suite.
func RunTailer(t *testing.T, newStore func(t *testing.T) TailStore) {
	t.Run("a tail page's cursors each resume after their event", func(t *testing.T) { testTailCursors(t, newStore(t)) })
	t.Run("a reader behind joins another at its head without a gap or a repeat", func(t *testing.T) { testJoin(t, newStore(t)) })
	t.Run("a reader from the head sees only later events", func(t *testing.T) { testHead(t, newStore(t)) })
	t.Run("a reader ahead cannot join one behind it", func(t *testing.T) { testJoinAhead(t, newStore(t)) })
}

func appendRound(t *testing.T, s eventstore.Store, round int) {
	t.Helper()
	for _, stream := range []string{"Order-a", "Customer-b", "Order-c"} {
		MustAppend(t, s, stream, eventstore.Any, Event("E", fmt.Sprint(round)))
	}
}

func testTailCursors(t *testing.T, s TailStore) {
	for round := range 4 {
		appendRound(t, s, round)
	}
	for _, category := range []string{"", "Order"} {
		want, _ := ReadAllEvents(t, s, category, "", 1000)
		page, err := s.ReadTail(ctx, category, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids(want), ids(page.Events)); diff != "" {
			t.Errorf("ReadTail(%q) (-ReadAll +ReadTail):\n%s", category, diff)
		}
		if len(page.After) != len(page.Events) {
			t.Fatalf("ReadTail(%q): %d cursors for %d events", category, len(page.After), len(page.Events))
		}
		for i, after := range page.After {
			rest, _ := ReadAllEvents(t, s, category, after, 3)
			if diff := cmp.Diff(ids(want[i+1:]), ids(rest)); diff != "" {
				t.Errorf("%q: read from the cursor after event %d (-want +got):\n%s", category, i, diff)
			}
		}
	}
}

// readBetween reads from from to to, page by page, and fails on error.
func readBetween(t *testing.T, s TailStore, category string, from, to eventstore.Cursor, limit int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for i := 0; ; i++ {
		page, done, err := s.ReadBetween(ctx, category, from, to, limit)
		if err != nil {
			t.Fatalf("ReadBetween(%q): %v", category, err)
		}
		if len(page.After) != len(page.Events) {
			t.Fatalf("ReadBetween: %d cursors for %d events", len(page.After), len(page.Events))
		}
		out = append(out, page.Events...)
		if done {
			if page.Next != to {
				t.Fatalf("ReadBetween done with Next %q, want the cursor joined", page.Next)
			}
			return out
		}
		if i > 10000 || page.Next == from && len(page.Events) == 0 {
			t.Fatalf("ReadBetween never reached its cursor")
		}
		from = page.Next
	}
}

func testJoin(t *testing.T, s TailStore) {
	for _, category := range []string{"", "Order"} {
		for _, limit := range []int{1, 2, 1000} {
			t.Run(fmt.Sprintf("%q in pages of %d", category, limit), func(t *testing.T) {
				_, behind := ReadAllEvents(t, s, category, "", 1000)
				appendRound(t, s, 10)
				appendRound(t, s, 11)
				head, err := s.ReadTail(ctx, category, behind, 1000) // the other reader moves on ...
				if err != nil {
					t.Fatal(err)
				}
				appendRound(t, s, 12) // ... and will read this next
				between := readBetween(t, s, category, behind, head.Next, limit)
				if diff := cmp.Diff(ids(head.Events), ids(between)); diff != "" {
					t.Errorf("read between the two cursors (-the other reader's +between):\n%s", diff)
				}
				next, _ := ReadAllEvents(t, s, category, head.Next, 1000)
				again, _ := ReadAllEvents(t, s, category, behind, 1000)
				if diff := cmp.Diff(ids(again), ids(append(between, next...))); diff != "" {
					t.Errorf("joined reader (-a reader from the first cursor +joined):\n%s", diff)
				}
				if page, done, err := s.ReadBetween(ctx, category, head.Next, head.Next, limit); err != nil || !done || len(page.Events) != 0 {
					t.Errorf("ReadBetween(a cursor, itself) = %d events, done %v, %v; want none, done", len(page.Events), done, err)
				}
			})
		}
	}
}

func testJoinAhead(t *testing.T, s TailStore) {
	appendRound(t, s, 0)
	_, behind := ReadAllEvents(t, s, "", "", 1000)
	appendRound(t, s, 1)
	_, ahead := ReadAllEvents(t, s, "", behind, 1000)
	if _, _, err := s.ReadBetween(ctx, "", ahead, behind, 10); !errors.Is(err, eventstore.ErrNotBehind) {
		t.Errorf("ReadBetween(ahead, behind) = %v, want ErrNotBehind", err)
	}
	if _, _, err := s.ReadBetween(ctx, "Order", ahead, behind, 10); eventstore.ErrorCode(err) != eventstore.CodeInvalidRequest {
		t.Errorf("ReadBetween with $all cursors for a category = %v, want invalid_request", err)
	}
}

func testHead(t *testing.T, s TailStore) {
	appendRound(t, s, 0)
	for _, category := range []string{"", "Order"} {
		head, err := s.Head(ctx, category)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ReadAllEvents(t, s, category, head, 10); len(got) != 0 {
			t.Errorf("read from the head of %q before any append: %v, want nothing", category, ids(got))
		}
		MustAppend(t, s, "Order-new"+category, eventstore.NoStream, Event("E", "new"))
		got, _ := ReadAllEvents(t, s, category, head, 10)
		if diff := cmp.Diff([]string{"Order-new" + category + "@1"}, ids(got)); diff != "" {
			t.Errorf("read from the head of %q (-want +got):\n%s", category, diff)
		}
		page, done, err := s.ReadBetween(ctx, category, "", head, 1000)
		if err != nil || !done {
			t.Fatalf("ReadBetween(start, head) = done %v, %v", done, err)
		}
		all, _ := ReadAllEvents(t, s, category, "", 1000)
		if diff := cmp.Diff(ids(all[:len(all)-1]), ids(page.Events)); diff != "" {
			t.Errorf("ReadBetween(start, head of %q) (-every event before the head +got):\n%s", category, diff)
		}
	}
}
