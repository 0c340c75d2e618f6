package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func TestConcurrentSingleAppendsAreGroupedAndExact(t *testing.T) {
	s := newStore(t, Options{GroupSlots: 2})
	const writers, each = 48, 40
	type reported struct {
		id      eventstore.UUID
		version int64
	}
	results := make([][]reported, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := eventstore.MustParseStreamID(fmt.Sprintf("Order-g%d", w))
			for i := 0; i < each; i++ {
				e := eventstore.AssignIDs([]eventstore.EventData{storetest.Event("E", fmt.Sprint(i))})
				res, err := s.Append(ctx, stream, eventstore.ExpectedVersion(i), e)
				if err != nil {
					t.Errorf("append %d to %s: %v", i+1, stream, err)
					return
				}
				results[w] = append(results[w], reported{e[0].ID, res.FirstVersion})
			}
		}()
	}
	wg.Wait()
	for w, rs := range results {
		page, err := s.ReadStream(ctx, eventstore.MustParseStreamID(fmt.Sprintf("Order-g%d", w)), eventstore.StreamQuery{Limit: each})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if r.version != int64(i+1) || page.Events[i].ID != r.id {
				t.Errorf("Order-g%d: append %d reported version %d, stored %s at %d", w, i+1, r.version, page.Events[i].ID, page.Events[i].Version)
			}
		}
	}
	statements, appends := s.groups.statements.Load(), s.groups.appends.Load()
	if appends != writers*each || float64(appends)/float64(statements) < 2 {
		t.Errorf("%d appends in %d statements: groups did not form", appends, statements)
	}
	t.Logf("%d appends in %d statements", appends, statements)
}

// gather runs appends as one group: it occupies the store's only slot with
// an append that waits for a lock, queues the appends behind it, then lets
// the first go, so that the queue is stored by one statement.
func gather(t *testing.T, s *Store, appends []func() error) []error {
	t.Helper()
	errs, statements := queueBehindSlot(t, s, appends)
	if statements != 1 {
		t.Fatalf("the queued appends took %d statements, want one group", statements)
	}
	return errs
}

// queueBehindSlot runs appends queued together, as gather does, and returns
// their errors and how many statements the store made of the queue.
func queueBehindSlot(t *testing.T, s *Store, appends []func() error) ([]error, int64) {
	t.Helper()
	release, _ := holdSlot(t, s)
	errs := make([]error, len(appends))
	var wg sync.WaitGroup
	for i, f := range appends {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	waitFor(t, "the appends to queue", func() bool { return s.groups.state().pending == len(appends) })
	before := s.groups.statements.Load()
	release()
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	waitFor(t, "every queued append to be answered", func() bool { return closed(answered) })
	return errs, s.groups.statements.Load() - before
}

// holdSlot occupies the store's only group slot with an append that waits
// for a lock; release lets it go. answered is closed once that append is
// answered; the test's end checks that it was stored.
func holdSlot(t *testing.T, s *Store) (release func(), answered <-chan struct{}) {
	t.Helper()
	if s.groups.slots != 1 {
		t.Fatalf("holdSlot needs a store with one group slot")
	}
	blocker := begin(t, s)
	appendInTx(t, blocker, "Order-gate", storetest.Event("E", "gate"))
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		_, err = s.Append(ctx, eventstore.MustParseStreamID("Order-gate"), eventstore.Any, []eventstore.EventData{storetest.Event("E", "waits")})
	}()
	waitFor(t, "the gate append to hold the slot", func() bool { return s.groups.state() == (groupState{running: 1}) })
	t.Cleanup(func() {
		blocker.Rollback(ctx) // should the test have failed before release
		<-done
		if err != nil {
			t.Errorf("gate append: %v", err)
		}
	})
	return func() {
		t.Helper()
		if err := blocker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}, done
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

type groupState struct{ running, pending int }

func (g *appendGroups) state() groupState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return groupState{g.running, len(g.pending)}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestEachAppendInAGroupGetsItsOwnAnswer(t *testing.T) {
	s := newStore(t, Options{GroupSlots: 1})
	storetest.MustAppend(t, s, "Order-at1", eventstore.NoStream, storetest.Event("E", "one"))
	replayed := eventstore.AssignIDs([]eventstore.EventData{storetest.Event("E", "again")})
	storetest.MustAppend(t, s, "Order-replay", eventstore.NoStream, replayed...)
	taken := storetest.MustAppend(t, s, "Order-taken", eventstore.NoStream, storetest.Event("E", "taken")).Events[0].ID

	var fresh, wrong, replay, dup, any1, any2 eventstore.AppendResult
	appendTo := func(res *eventstore.AppendResult, stream string, expected eventstore.ExpectedVersion, e eventstore.EventData) func() error {
		return func() (err error) {
			*res, err = s.Append(ctx, eventstore.MustParseStreamID(stream), expected, []eventstore.EventData{e})
			return err
		}
	}
	dupEvent := storetest.Event("E", "dup")
	dupEvent.ID = taken
	errs := gather(t, s, []func() error{
		appendTo(&fresh, "Order-fresh", eventstore.NoStream, storetest.Event("E", "fresh")),
		appendTo(&wrong, "Order-at1", 5, storetest.Event("E", "wrong")),
		appendTo(&replay, "Order-replay", eventstore.NoStream, replayed[0]),
		appendTo(&dup, "Order-dup", eventstore.Any, dupEvent),
		appendTo(&any1, "Order-both", eventstore.Any, storetest.Event("E", "both-1")),
		appendTo(&any2, "Order-both", eventstore.Any, storetest.Event("E", "both-2")),
	})
	if errs[0] != nil || fresh.FirstVersion != 1 {
		t.Errorf("fresh stream: %+v, %v; want version 1", fresh, errs[0])
	}
	var w *eventstore.WrongExpectedVersionError
	if !errors.As(errs[1], &w) || w.Actual != 1 {
		t.Errorf("wrong version: %v, want wrong expected version, actual 1", errs[1])
	}
	if errs[2] != nil || !replay.Replayed || replay.FirstVersion != 1 {
		t.Errorf("replay: %+v, %v; want the first result, replayed", replay, errs[2])
	}
	var d *eventstore.DuplicateEventIDError
	if !errors.As(errs[3], &d) || d.Stream.String() != "Order-taken" {
		t.Errorf("duplicate id: %v, want the id's stream named", errs[3])
	}
	if errs[4] != nil || errs[5] != nil || any1.FirstVersion+any2.FirstVersion != 3 {
		t.Errorf("two appends with any to one stream: %d, %d (%v, %v); want versions 1 and 2", any1.FirstVersion, any2.FirstVersion, errs[4], errs[5])
	}
	for _, stream := range []string{"Order-dup", "Order-replay", "Order-at1"} {
		page, err := s.ReadStream(ctx, eventstore.MustParseStreamID(stream), eventstore.StreamQuery{})
		if stream == "Order-dup" {
			if !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Errorf("%s after a refused append: %v, want absent", stream, err)
			}
			continue
		}
		if err != nil || page.Version != 1 {
			t.Errorf("%s: version %d (%v), want still 1", stream, page.Version, err)
		}
	}
}

func TestAGroupWhoseAnswerIsLostIsSettledForEveryAppend(t *testing.T) {
	base := newStore(t, Options{})
	ps, proxy := proxiedStore(t, base)
	ps.groups = newAppendGroups(1, DefaultMaxGroup)
	const n = 5
	results := make([]eventstore.AppendResult, n)
	appends := make([]func() error, n)
	for i := range appends {
		appends[i] = func() (err error) {
			results[i], err = ps.Append(ctx, eventstore.MustParseStreamID(fmt.Sprintf("Order-lost%d", i)), eventstore.NoStream,
				[]eventstore.EventData{storetest.Event("E", fmt.Sprint(i))})
			return err
		}
	}
	cut := proxy.armTag(loseAnswer, fmt.Sprintf("INSERT 0 %d", n))
	errs := gather(t, ps, appends)
	select {
	case <-cut:
	default:
		t.Fatalf("the proxy did not cut the group's answer; the test tested nothing")
	}
	for i, err := range errs {
		if err != nil || results[i].FirstVersion != 1 || results[i].Replayed {
			t.Errorf("append %d: %+v, %v; want stored at version 1", i, results[i], err)
		}
	}
	all, _ := storetest.ReadAllEvents(t, base, "", "", 100)
	if len(all) != n+1 { // and the gate's
		t.Errorf("%d events stored, want %d", len(all), n+1)
	}
}
