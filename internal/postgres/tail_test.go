package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/internal/eventstore"

	"github.com/strata-events/strata/internal/storetest"
)

func TestTailer(t *testing.T) {
	storetest.RunTailer(t, func(t *testing.T) storetest.TailStore { return newStore(t, Options{}) })
}

func TestTailerInSlicesOfTwo(t *testing.T) {
	storetest.RunTailer(t, func(t *testing.T) storetest.TailStore { return newStore(t, Options{SliceSize: 2}) })
}

// A transaction that commits late, with a lower position than events
// already read by both readers, is read once by the joined reader: by the
// read between the cursors if the other reader had passed it, after the
// join otherwise.
func TestAJoinDoesNotSkipALateCommit(t *testing.T) {
	s := newStore(t, Options{})
	for _, commitBeforeTheOtherReads := range []bool{true, false} {
		late, early := fmt.Sprintf("Order-late%v", commitBeforeTheOtherReads), fmt.Sprintf("Order-early%v", commitBeforeTheOtherReads)
		_, behind := storetest.ReadAllEvents(t, s, "", "", 1000)
		tx := begin(t, s)
		appendInTx(t, tx, late, storetest.Event("E", "late"))
		storetest.MustAppend(t, s, early, eventstore.Any, storetest.Event("E", "early"))
		_, behind = storetest.ReadAllEvents(t, s, "", behind, 1000) // passes early, not late
		if commitBeforeTheOtherReads {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		head, err := s.ReadTail(ctx, "", "", 1000) // the other reader
		if err != nil {
			t.Fatal(err)
		}
		if !commitBeforeTheOtherReads {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		got := readAllBetween(t, s, behind, head.Next)
		after, _ := storetest.ReadAllEvents(t, s, "", head.Next, 1000)
		var streams []string
		for _, e := range append(got, after...) {
			streams = append(streams, e.StreamID.String())
		}
		if diff := cmp.Diff([]string{late}, streams); diff != "" {
			t.Errorf("commit before the other reads %v: read after the join (-want +got):\n%s", commitBeforeTheOtherReads, diff)
		}
	}
}

func readAllBetween(t *testing.T, s *Store, from, to eventstore.Cursor) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for {
		page, done, err := s.ReadBetween(ctx, "", from, to, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
		if done {
			return out
		}
		from = page.Next
	}
}

// A cursor in the middle of a batch is not a point to join at.
func TestAJoinNeedsACursorBetweenBatches(t *testing.T) {
	s := newStore(t, Options{})
	storetest.MustAppend(t, s, "Order-a", eventstore.Any, storetest.Events(3, "a")...)
	mid, err := s.ReadTail(ctx, "", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadBetween(ctx, "", "", mid.Next, 10); !errors.Is(err, eventstore.ErrNotBehind) {
		t.Errorf("ReadBetween(start, a cursor mid-batch) = %v, want ErrNotBehind", err)
	}
}
