package postgres

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func sid(s string) eventstore.StreamID { return eventstore.MustParseStreamID(s) }

func TestAMultiStreamAppendStoresAllOrNothing(t *testing.T) {
	s := newStore(t, Options{})
	storetest.MustAppend(t, s, "Account-a", eventstore.NoStream, storetest.Events(2, "a")...)
	storetest.MustAppend(t, s, "Account-b", eventstore.NoStream, storetest.Events(1, "b")...)
	storetest.MustAppend(t, s, "Limit-x", eventstore.NoStream, storetest.Events(3, "x")...)

	appends := []eventstore.StreamAppend{
		{Stream: sid("Account-b"), Expected: 1, Events: storetest.Events(1, "b2")},
		{Stream: sid("Account-a"), Expected: 2, Events: storetest.Events(2, "a2")},
		{Stream: sid("Transfer-1"), Expected: eventstore.NoStream, Events: storetest.Events(1, "t")},
	}
	for i := range appends {
		appends[i].Events = eventstore.AssignIDs(appends[i].Events) // the client's ids, for the retry below
	}
	res, err := s.AppendMulti(ctx, appends, []eventstore.Guard{{Stream: sid("Limit-x"), Expected: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Stream.String() != "Account-b" || res[0].LastVersion != 2 || res[1].FirstVersion != 3 || res[1].LastVersion != 4 ||
		res[2].LastVersion != 1 || res[2].Events[0].GlobalPosition == 0 {
		t.Fatalf("AppendMulti = %+v, want each stream's versions in the order of the appends", res)
	}
	if v := streamVersions(t, s, "Limit-x"); v != "1 2 3 of 3" {
		t.Errorf("the guarded stream reads %q after the append, want it unchanged", v)
	}

	t.Run("the transaction's events come together in $all", func(t *testing.T) {
		all, _ := storetest.ReadAllEvents(t, s, "", "", 1000)
		var tail []string
		for _, e := range all[len(all)-4:] {
			tail = append(tail, e.StreamID.String())
		}
		if fmt.Sprint(tail) != "[Account-a Account-a Account-b Transfer-1]" {
			t.Errorf("$all ends with %v, want the four events of the transaction, in stream order", tail)
		}
	})

	t.Run("a failed expectation or guard names its stream and stores nothing", func(t *testing.T) {
		before, _ := storetest.ReadAllEvents(t, s, "", "", 1000)
		for _, tc := range []struct {
			appends []eventstore.StreamAppend
			guards  []eventstore.Guard
			stream  string
			actual  int64
		}{
			{[]eventstore.StreamAppend{{Stream: sid("Account-a"), Expected: 4, Events: storetest.Events(1, "p")}, {Stream: sid("Account-b"), Expected: 1, Events: storetest.Events(1, "q")}}, nil, "Account-b", 2},
			{[]eventstore.StreamAppend{{Stream: sid("Account-a"), Expected: 4, Events: storetest.Events(1, "p")}}, []eventstore.Guard{{Stream: sid("Limit-x"), Expected: 2}}, "Limit-x", 3},
			{[]eventstore.StreamAppend{{Stream: sid("Account-a"), Expected: 4, Events: storetest.Events(1, "p")}}, []eventstore.Guard{{Stream: sid("Limit-none"), Expected: eventstore.StreamExists}}, "Limit-none", 0},
			{[]eventstore.StreamAppend{{Stream: sid("Transfer-1"), Expected: eventstore.NoStream, Events: storetest.Events(1, "p")}}, nil, "Transfer-1", 1},
		} {
			_, err := s.AppendMulti(ctx, tc.appends, tc.guards)
			var wrong *eventstore.WrongExpectedVersionError
			if !errors.As(err, &wrong) || wrong.Stream.String() != tc.stream || wrong.Actual != tc.actual {
				t.Errorf("AppendMulti(%v, %v) = %v, want wrong_expected_version of %s at %d", tc.appends, tc.guards, err, tc.stream, tc.actual)
			}
		}
		if after, _ := storetest.ReadAllEvents(t, s, "", "", 1000); len(after) != len(before) {
			t.Errorf("failed multi-stream appends stored %d events", len(after)-len(before))
		}
	})

	t.Run("a retry with the same event ids is a replay", func(t *testing.T) {
		again, err := s.AppendMulti(ctx, appends, []eventstore.Guard{{Stream: sid("Limit-x"), Expected: 3}})
		if err != nil || len(again) != 3 || !again[0].Replayed || again[1].LastVersion != 4 || again[2].Events[0].ID != res[2].Events[0].ID {
			t.Errorf("the retry = %+v, %v; want the first answer, replayed", again, err)
		}
	})

	t.Run("bad input is refused, naming the part", func(t *testing.T) {
		many := make([]eventstore.Guard, eventstore.MaxMultiStreams)
		for i := range many {
			many[i] = eventstore.Guard{Stream: sid(fmt.Sprintf("G-%d", i)), Expected: 1}
		}
		one := []eventstore.StreamAppend{{Stream: sid("Account-a"), Expected: eventstore.Any, Events: storetest.Events(1, "z")}}
		for _, tc := range []struct {
			name    string
			appends []eventstore.StreamAppend
			guards  []eventstore.Guard
			code    string
		}{
			{"no append", nil, nil, eventstore.CodeInvalidRequest},
			{"a stream twice", append(one, one[0]), nil, eventstore.CodeInvalidRequest},
			{"a guard on an appended stream", one, []eventstore.Guard{{Stream: sid("Account-a"), Expected: 1}}, eventstore.CodeInvalidRequest},
			{"a guard of any version", one, []eventstore.Guard{{Stream: sid("Limit-x"), Expected: eventstore.Any}}, eventstore.CodeInvalidExpectedVersion},
			{"too many streams", one, many, eventstore.CodeTooLarge},
			{"too many events", []eventstore.StreamAppend{{Stream: sid("A-1"), Expected: eventstore.Any, Events: storetest.Events(600, "m")},
				{Stream: sid("A-2"), Expected: eventstore.Any, Events: storetest.Events(401, "n")}}, nil, eventstore.CodeTooLarge},
			{"an empty append", []eventstore.StreamAppend{{Stream: sid("A-1"), Expected: eventstore.Any}}, nil, eventstore.CodeInvalidRequest},
		} {
			if _, err := s.AppendMulti(ctx, tc.appends, tc.guards); eventstore.ErrorCode(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
	})
}

// Transfers between accounts, in both directions at once, with a guard
// on a shared stream and single appends racing them: no deadlock, no
// half-applied transfer, and every guard held at commit.
func TestConcurrentMultiStreamAppendsNeverDeadlockNorHalfApply(t *testing.T) {
	s := newStore(t, Options{})
	const accounts = 6
	for i := range accounts {
		storetest.MustAppend(t, s, fmt.Sprintf("Account-%d", i), eventstore.NoStream, storetest.Events(1, "open")...)
	}
	storetest.MustAppend(t, s, "Rules-1", eventstore.NoStream, storetest.Events(1, "rules")...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, conflicts := 0, 0
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 40 {
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				_, err := s.AppendMulti(ctx, []eventstore.StreamAppend{
					{Stream: sid(fmt.Sprintf("Account-%d", from)), Expected: eventstore.Any, Events: storetest.Events(1, "debit")},
					{Stream: sid(fmt.Sprintf("Account-%d", to)), Expected: eventstore.Any, Events: storetest.Events(1, "credit")},
				}, []eventstore.Guard{{Stream: sid("Rules-1"), Expected: 1}})
				mu.Lock()
				switch {
				case err == nil:
					done++
				case errors.Is(err, eventstore.ErrWrongExpectedVersion):
					conflicts++
				default:
					t.Errorf("transfer: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range accounts {
		page, err := s.ReadStream(ctx, sid(fmt.Sprintf("Account-%d", i)), eventstore.StreamQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		total += len(page.Events) - 1
	}
	if done != 320 || conflicts != 0 || total != 2*done {
		t.Errorf("%d transfers stored, %d conflicts, %d account events; want 320, none, and two events each", done, conflicts, total)
	}

	// A change of the guarded stream while transfers run fails exactly
	// the transfers that commit after it.
	storetest.MustAppend(t, s, "Rules-1", 1, storetest.Events(1, "rules2")...)
	_, err := s.AppendMulti(ctx, []eventstore.StreamAppend{{Stream: sid("Account-0"), Expected: eventstore.Any, Events: storetest.Events(1, "late")}},
		[]eventstore.Guard{{Stream: sid("Rules-1"), Expected: 1}})
	var wrong *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wrong) || wrong.Stream.String() != "Rules-1" || wrong.Actual != 2 {
		t.Errorf("a transfer guarded by a changed stream = %v, want wrong_expected_version of Rules-1 at 2", err)
	}
}

// A guard holds at commit: an append to the guarded stream that comes
// while the guarded transaction is open waits for it to commit, and then
// takes the next version; so at the guarded append's commit the stream was
// still at the version its guard named.
func TestAGuardHoldsAtCommit(t *testing.T) {
	s := newStore(t, Options{GroupSlots: -1})
	storetest.MustAppend(t, s, "Rules-1", eventstore.NoStream, storetest.Events(1, "r")...)
	held, release := make(chan struct{}), make(chan struct{})
	beforeMultiCommit = func() { close(held); <-release }
	t.Cleanup(func() { beforeMultiCommit = nil })

	guarded := make(chan error, 1)
	go func() {
		_, err := s.AppendMulti(ctx, []eventstore.StreamAppend{{Stream: sid("Order-g"), Expected: eventstore.NoStream, Events: storetest.Events(1, "g")}},
			[]eventstore.Guard{{Stream: sid("Rules-1"), Expected: 1}})
		guarded <- err
	}()
	<-held // the guard is checked and the transaction is open
	beforeMultiCommit = nil
	racing := make(chan error, 1)
	var res eventstore.AppendResult
	go func() {
		var err error
		res, err = s.Append(ctx, sid("Rules-1"), eventstore.Any, storetest.Events(1, "change"))
		racing <- err
	}()
	// The racing append waits on the guard's row: the server shows a
	// backend waiting for a transaction's lock.
	for waiting := 0; waiting == 0; {
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'transactionid'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-racing:
			t.Fatalf("an append to the guarded stream finished while the guarded transaction was open: %v", err)
		default:
		}
	}
	close(release)
	if err := <-guarded; err != nil {
		t.Fatalf("the guarded append = %v", err)
	}
	if err := <-racing; err != nil || res.LastVersion != 2 {
		t.Fatalf("the racing append = %+v, %v; want version 2, after the guarded one", res, err)
	}
	if v := streamVersions(t, s, "Rules-1"); v != "1 2 of 2" {
		t.Errorf("Rules-1 reads %q: the guard's row is left", v)
	}
	var guards int
	s.pool.QueryRow(ctx, "SELECT count(*) FROM events WHERE type = $1", guardType).Scan(&guards)
	if guards != 0 {
		t.Errorf("%d guard rows are stored", guards)
	}
}

// TestAllShowsAMultiStreamAppendTogether races multi-stream appends
// against single appends to the same streams, with readers paging $all
// and a category by cursor, in small slices and in default ones. Each
// read holds every event once, each stream in version order, and the
// events of one multi-stream append together, with no other event among
// them.
func TestAllShowsAMultiStreamAppendTogether(t *testing.T) {
	for _, slice := range []int{5, DefaultSliceSize} {
		t.Run(fmt.Sprintf("slices of %d", slice), func(t *testing.T) { raceMultiAppends(t, slice) })
	}
}

func raceMultiAppends(t *testing.T, sliceSize int) {
	s := newStore(t, Options{SliceSize: sliceSize})
	streams := []string{"Account-0", "Account-1", "Account-2", "Account-3", "Account-4", "Ledger-0", "Ledger-1", "Ledger-2"}
	const workers, appendsEach = 4, 50

	var mu sync.Mutex
	var txs [][]eventstore.UUID // the events of each multi-stream append
	stored := 0
	var writers sync.WaitGroup
	for w := range 2 * workers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for range appendsEach {
				if w%2 == 0 { // a single append
					events := storetest.Events(1+rng.IntN(3), fmt.Sprintf("single-%d", w))
					if _, err := s.Append(ctx, sid(streams[rng.IntN(len(streams))]), eventstore.Any, events); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					stored += len(events)
					mu.Unlock()
					continue
				}
				var appends []eventstore.StreamAppend
				for _, i := range rng.Perm(len(streams))[:2+rng.IntN(2)] {
					appends = append(appends, eventstore.StreamAppend{Stream: sid(streams[i]), Expected: eventstore.Any,
						Events: storetest.Events(1+rng.IntN(2), fmt.Sprintf("multi-%d", w))})
				}
				results, err := s.AppendMulti(ctx, appends, nil)
				if err != nil {
					t.Errorf("multi-stream append: %v", err)
					return
				}
				var ids []eventstore.UUID
				for _, r := range results {
					for _, e := range r.Events {
						ids = append(ids, e.ID)
					}
				}
				mu.Lock()
				txs = append(txs, ids)
				stored += len(ids)
				mu.Unlock()
			}
		}()
	}

	categories := []string{"", "Account"}
	reads := make([][]eventstore.RecordedEvent, len(categories))
	var readers sync.WaitGroup
	done := make(chan struct{})
	for c, category := range categories {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := readUntil(s, category, done, func(events []eventstore.RecordedEvent) { reads[c] = append(reads[c], events...) }); err != nil {
				t.Error(err)
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		return
	}

	for c, category := range categories {
		name, got := readName(category), reads[c]
		at := map[eventstore.UUID]int{}
		last := map[string]int64{}
		for i, e := range got {
			if _, twice := at[e.ID]; twice {
				t.Errorf("%s: read %s twice", name, e.ID)
			}
			at[e.ID] = i
			if stream := e.StreamID.String(); e.Version != last[stream]+1 {
				t.Errorf("%s: read %s@%d after version %d", name, stream, e.Version, last[stream])
			} else {
				last[stream] = e.Version
			}
		}
		if category == "" && len(got) != stored {
			t.Errorf("%s: read %d events, want the %d stored", name, len(got), stored)
		}
		apart := 0
		for _, ids := range txs {
			var where []int
			for _, id := range ids {
				if i, ok := at[id]; ok {
					where = append(where, i)
				}
			}
			slices.Sort(where)
			if len(where) > 0 && where[len(where)-1]-where[0] != len(where)-1 {
				apart++
			}
		}
		if apart > 0 {
			t.Errorf("%s: %d of %d multi-stream appends were read with other events among theirs", name, apart, len(txs))
		}
	}
}
