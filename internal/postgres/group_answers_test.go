package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

type appendResult struct {
	res eventstore.AppendResult
	err error
}

func appendAsync(s *Store, ctx context.Context, stream string, expected eventstore.ExpectedVersion, e eventstore.EventData) chan appendResult {
	done := make(chan appendResult, 1)
	go func() {
		res, err := s.Append(ctx, eventstore.MustParseStreamID(stream), expected, []eventstore.EventData{e})
		done <- appendResult{res, err}
	}()
	return done
}

func stored(t *testing.T, s *Store, stream string) int64 {
	t.Helper()
	page, err := s.ReadStream(ctx, eventstore.MustParseStreamID(stream), eventstore.StreamQuery{})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return page.Version
}

// An append whose group is already running when its caller's deadline
// passes is stored by that group: it must be answered as stored, not with
// an error that a client takes for "nothing was stored".
func TestAnAppendInARunningGroupIsAnsweredWithItsOutcome(t *testing.T) {
	s := newStore(t, Options{GroupSlots: 1})
	hot := begin(t, s)
	appendInTx(t, hot, "Order-hot", storetest.Event("E", "held"))
	release := holdSlot(t, s)

	leaving, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	a := appendAsync(s, leaving, "Order-a", eventstore.Any, storetest.Event("E", "a"))
	h := appendAsync(s, ctx, "Order-hot", eventstore.Any, storetest.Event("E", "hot"))
	waitFor(t, "the two appends to queue", func() bool { return s.groups.state().pending == 2 })
	before := s.groups.statements.Load()
	release()
	// The group of the two now waits for the lock on Order-hot's version 1.
	waitFor(t, "the group to run", func() bool { return s.groups.statements.Load() == before+1 })
	<-leaving.Done()
	if err := hot.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ra, rh := <-a, <-h
	if rh.err != nil || rh.res.FirstVersion != 2 {
		t.Errorf("the append to Order-hot: %+v, %v; want version 2", rh.res, rh.err)
	}
	if v := stored(t, s, "Order-a"); ra.err != nil || v != 1 || ra.res.FirstVersion != 1 {
		t.Errorf("the append whose caller left: answered %+v, %v; Order-a holds %d events; want stored at version 1 and answered so", ra.res, ra.err, v)
	}
}

// A leader runs its groups without watching its caller's context: when its
// deadline passes meanwhile, its answer must still be the outcome. (Were it
// to choose at random between the two, one of eight leaders would be
// answered falsely but once in 256 runs.)
func TestALeaderWhoseDeadlinePassesIsAnsweredWithItsOutcome(t *testing.T) {
	const leaders = 8
	s := newStore(t, Options{GroupSlots: leaders})
	answers := make([]chan appendResult, leaders)
	var holders []pgx.Tx
	var contexts []context.Context
	for i := range answers {
		stream := fmt.Sprintf("Order-led%d", i)
		holders = append(holders, begin(t, s))
		appendInTx(t, holders[i], stream, storetest.Event("E", "held"))
		leaving, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		contexts = append(contexts, leaving)
		answers[i] = appendAsync(s, leaving, stream, eventstore.Any, storetest.Event("E", "led"))
	}
	waitFor(t, "every append to lead a group of its own", func() bool { return s.groups.state() == groupState{running: leaders} })
	for _, c := range contexts {
		<-c.Done()
	}
	// The holders roll back: each append then stores its event at version 1.
	for _, tx := range holders {
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, answer := range answers {
		stream := fmt.Sprintf("Order-led%d", i)
		r := <-answer
		if v := stored(t, s, stream); r.err != nil || v != 1 || r.res.FirstVersion != 1 {
			t.Errorf("the leader of %s: answered %+v, %v; %s holds %d events; want stored at version 1 and answered so", stream, r.res, r.err, stream, v)
		}
	}
}

// An append still waiting for a group when its caller leaves is taken out
// of the queue: its error is true, nothing is stored later.
func TestAnAppendThatLeavesBeforeItsGroupRunsIsNeverStored(t *testing.T) {
	s := newStore(t, Options{GroupSlots: 1})
	release := holdSlot(t, s)
	leaving, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	a := appendAsync(s, leaving, "Order-gone", eventstore.NoStream, storetest.Event("E", "gone"))
	r := <-a
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("an append that waited past its deadline for a slot: %+v, %v; want the deadline's error", r.res, r.err)
	}
	if st := s.groups.state(); st.pending != 0 {
		t.Errorf("after its caller left, %d appends are still queued; want it taken out", st.pending)
	}
	release()
	waitFor(t, "the slot to be free", func() bool { return s.groups.state() == groupState{} })
	if v := stored(t, s, "Order-gone"); v != 0 {
		t.Errorf("Order-gone holds %d events after its append was answered with an error; want none", v)
	}
}
