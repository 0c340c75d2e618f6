package postgres

import (
	"bytes"
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
	release, _ := holdSlot(t, s)

	leaving := newLeavingContext()
	a := appendAsync(s, leaving, "Order-a", eventstore.Any, storetest.Event("E", "a"))
	h := appendAsync(s, ctx, "Order-hot", eventstore.Any, storetest.Event("E", "hot"))
	waitFor(t, "the two appends to queue", func() bool { return s.groups.state().pending == 2 })
	before := s.groups.statements.Load()
	release()
	// The group of the two now waits for the lock on Order-hot's version 1.
	waitFor(t, "the group to run", func() bool { return s.groups.statements.Load() == before+1 })
	leaving.leave()
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

// leavingContext is a caller's context whose deadline passes when the test
// says so, not when a clock does.
type leavingContext struct {
	context.Context
	done chan struct{}
}

func newLeavingContext() *leavingContext {
	return &leavingContext{Context: ctx, done: make(chan struct{})}
}

func (c *leavingContext) leave()                { close(c.done) }
func (c *leavingContext) Done() <-chan struct{} { return c.done }

func (c *leavingContext) Err() error {
	if closed(c.done) {
		return context.DeadlineExceeded
	}
	return nil
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
	release, _ := holdSlot(t, s)
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

// Two appends in one group that carry the same event id: each is answered
// as if it had come alone, neither waits for an answer that never comes,
// and no version is learnt that was not stored.
func TestTwoAppendsOfOneEventIDInAGroup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		streams [2]string
		same    bool // the same data: a true duplicate, whose second is a replay
	}{
		{"to two streams with different data: one is stored, the other refused as a duplicate", [2]string{"Order-X", "Order-Y"}, false},
		{"twice to one stream, the same event: one is stored, the other is its replay", [2]string{"Order-Z", "Order-Z"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{GroupSlots: 1})
			events := make([]eventstore.EventData, 2)
			events[0] = eventstore.AssignIDs([]eventstore.EventData{storetest.Event("E", "once")})[0]
			events[1] = events[0]
			if !tc.same {
				events[1].Data = []byte("other data")
			}
			results := make([]eventstore.AppendResult, 2)
			appends := make([]func() error, 2)
			for i := range appends {
				appends[i] = func() (err error) {
					results[i], err = s.Append(ctx, eventstore.MustParseStreamID(tc.streams[i]), eventstore.Any, events[i:i+1])
					return err
				}
			}
			errs, _ := queueBehindSlot(t, s, appends) // the store may split the queue
			var stores, replays, refusals int
			for i, err := range errs {
				stream := tc.streams[i]
				var d *eventstore.DuplicateEventIDError
				switch {
				case err == nil && results[i].Replayed:
					replays++
				case err == nil:
					stores++
				case errors.As(err, &d) && !tc.same:
					refusals++
					if v := stored(t, s, stream); v != 0 {
						t.Errorf("%s was refused as a duplicate but holds %d events", stream, v)
					}
					// The refused stream's version must not have been learnt.
					_, err := s.Append(ctx, eventstore.MustParseStreamID(stream), 1, []eventstore.EventData{storetest.Event("E", "next")})
					var w *eventstore.WrongExpectedVersionError
					if !errors.As(err, &w) || w.Actual != 0 {
						t.Errorf("Append(%s, 1) to a stream that holds nothing = %v, want wrong expected version, actual 0", stream, err)
					}
					continue
				default:
					t.Errorf("the append to %s: %v; want stored, replayed or refused as a duplicate", stream, err)
					continue
				}
				page, err := s.ReadStream(ctx, eventstore.MustParseStreamID(stream), eventstore.StreamQuery{})
				if err != nil || page.Version != 1 || results[i].FirstVersion != 1 || page.Events[0].ID != events[i].ID || !bytes.Equal(page.Events[0].Data, events[i].Data) {
					t.Errorf("%s was answered %+v but holds %+v (%v); want this event at version 1", stream, results[i], page.Events, err)
				}
			}
			want := [3]int{1, 0, 1}
			if tc.same {
				want = [3]int{1, 1, 0}
			}
			if got := [3]int{stores, replays, refusals}; got != want {
				t.Errorf("stored, replayed, refused: %v, want %v", got, want)
			}
		})
	}
}

// A leader is answered once its own append's group is done, however many
// appends wait behind it: the groups after its own are not its to run.
// Here the group queued behind the leader's waits for a lock, standing for
// load that never lets the queue empty.
func TestALeaderIsAnsweredOnceItsOwnGroupIsDone(t *testing.T) {
	s := newStore(t, Options{GroupSlots: 1, MaxGroup: 2})
	release, leaderAnswered := holdSlot(t, s)
	hot := begin(t, s) // should the test fail, rolled back before holdSlot checks the leader
	appendInTx(t, hot, "Order-hot", storetest.Event("E", "held"))
	streams := []string{"Order-hot", "Order-b1", "Order-b2", "Order-b3"}
	answers := make([]chan appendResult, len(streams))
	for i, stream := range streams {
		answers[i] = appendAsync(s, ctx, stream, eventstore.Any, storetest.Event("E", "behind"))
		waitFor(t, "the append to queue", func() bool { return s.groups.state().pending == i+1 })
	}
	release()
	waitFor(t, "the leader to be answered while the group behind it waits", func() bool { return closed(leaderAnswered) })
	// The leader is answered before the group behind it is taken from the
	// queue: wait for that group to run, its two appends out of the queue.
	waitFor(t, "the group behind the leader to run, with the last two pending", func() bool {
		return s.groups.state() == groupState{running: 1, pending: 2}
	})
	if err := hot.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i, stream := range streams {
		if r := <-answers[i]; r.err != nil {
			t.Errorf("the append to %s queued behind the leader: %v", stream, r.err)
		}
	}
	waitFor(t, "the slot to be free", func() bool { return s.groups.state() == groupState{} })
}
