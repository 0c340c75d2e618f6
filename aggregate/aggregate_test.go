package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/client"
)

var ctx = context.Background()

// An account is the aggregate of these tests: deposits and withdrawals,
// and no withdrawal beyond the balance.
type account struct {
	balance int
	events  int
}

type amount struct {
	Amount int `json:"amount"`
}

func evolve(a account, e client.RecordedEvent) (account, error) {
	var d amount
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return a, err
	}
	switch e.Type {
	case "Deposited":
		a.balance += d.Amount
	case "Withdrawn":
		a.balance -= d.Amount
	default:
		return a, fmt.Errorf("unknown event type %s", e.Type)
	}
	a.events++
	return a, nil
}

var errInsufficient = errors.New("insufficient funds")

func withdraw(n int) func(account) ([]client.Event, error) {
	return func(a account) ([]client.Event, error) {
		if a.balance < n {
			return nil, fmt.Errorf("balance %d, cannot withdraw %d: %w", a.balance, n, errInsufficient)
		}
		return []client.Event{{Type: "Withdrawn", Data: amount{n}}}, nil
	}
}

func deposit(n int) func(account) ([]client.Event, error) {
	return func(account) ([]client.Event, error) {
		return []client.Event{{Type: "Deposited", Data: amount{n}}}, nil
	}
}

// noWait retries at once.
var noWait = aggregate.Options{Backoff: -1}

// recorder is a Store that records the expected version of each append.
type recorder struct {
	aggregate.Store
	mu       sync.Mutex
	expected []client.ExpectedVersion
}

func (r *recorder) Append(ctx context.Context, streamID string, expected client.ExpectedVersion, events []client.Event) (client.AppendResult, error) {
	r.mu.Lock()
	r.expected = append(r.expected, expected)
	r.mu.Unlock()
	return r.Store.Append(ctx, streamID, expected, events)
}

// handle runs a command on Account-1 and fails the test on an error.
func handle(t *testing.T, store aggregate.Store, decide func(account) ([]client.Event, error)) aggregate.Result {
	t.Helper()
	res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, decide, noWait)
	if err != nil {
		t.Fatalf("Handle = %v", err)
	}
	return res
}

func balance(t *testing.T, store aggregate.Store) account {
	t.Helper()
	a, _, err := aggregate.Load(ctx, store, "Account-1", account{}, evolve)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestHandleAppendsExpectingTheVersionItDecidedOn(t *testing.T) {
	store := &recorder{Store: &aggregatetest.Store{}}
	first := handle(t, store, deposit(10))
	second := handle(t, store, withdraw(4))
	third := handle(t, store, deposit(1))

	if diff := cmp.Diff([]client.ExpectedVersion{client.NoStream, 1, 2}, store.expected); diff != "" {
		t.Errorf("expected versions sent (-want +got):\n%s", diff)
	}
	for i, tt := range []struct {
		res           aggregate.Result
		version, last int64
	}{{first, 0, 1}, {second, 1, 2}, {third, 2, 3}} {
		if tt.res.Version != tt.version || tt.res.Appended.LastVersion != tt.last || tt.res.StreamVersion() != tt.last ||
			tt.res.Attempts != 1 || tt.res.StreamID != "Account-1" {
			t.Errorf("command %d: Result = %+v, want decided on %d, appended to %d, in one attempt", i+1, tt.res, tt.version, tt.last)
		}
	}
	if got := balance(t, store); got.balance != 7 || got.events != 3 {
		t.Errorf("account = %+v, want balance 7 after 3 events", got)
	}
}

func TestHandleDecidesAgainOnTheNewStateAfterAConcurrentAppend(t *testing.T) {
	tests := []struct {
		name        string
		concurrent  func(account) ([]client.Event, error) // appended between the read and the append
		command     func(account) ([]client.Event, error)
		wantDecided []int // the balances decided on
		wantErr     error
		wantBalance int
	}{
		{"a deposit that lands first is in the state decided on again", deposit(5), withdraw(8), []int{10, 15}, nil, 7},
		{"a withdrawal that lands first makes the withdrawal rejected", withdraw(5), withdraw(8), []int{10, 5}, errInsufficient, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &aggregatetest.Store{}
			handle(t, store, deposit(10))
			var once sync.Once
			store.BeforeAppend = func(ctx context.Context, streamID string) {
				once.Do(func() { handle(t, store, tt.concurrent) })
			}
			var decided []int
			res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, func(a account) ([]client.Event, error) {
				decided = append(decided, a.balance)
				return tt.command(a)
			}, noWait)

			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantDecided, decided); diff != "" {
				t.Errorf("balances decided on (-want +got):\n%s", diff)
			}
			if res.Attempts != 2 || res.Version != 2 {
				t.Errorf("Result = %+v, want 2 attempts, the last on version 2", res)
			}
			if got := balance(t, store); got.balance != tt.wantBalance {
				t.Errorf("balance = %d, want %d", got.balance, tt.wantBalance)
			}
			if tt.wantErr != nil {
				var rejected *aggregate.RejectedError
				if !errors.As(err, &rejected) || !errors.Is(err, aggregate.ErrRejected) {
					t.Fatalf("Handle = %v (%T), want an *aggregate.RejectedError", err, err)
				}
				if rejected.Version != 2 || rejected.StreamID != "Account-1" || err.Error() != "balance 5, cannot withdraw 8: insufficient funds" {
					t.Errorf("rejection = %+v %q, want version 2 and the decision's message", rejected, err)
				}
				if n := len(store.Events("Account-1")); n != 2 {
					t.Errorf("the stream has %d events, want 2: a rejected command appends nothing", n)
				}
			}
		})
	}
}

func TestHandleGivesUpAfterMaxAttempts(t *testing.T) {
	for _, tt := range []struct {
		name         string
		maxAttempts  int
		wantAttempts int
	}{{"the default", 0, aggregate.DefaultMaxAttempts}, {"a bound of 3", 3, 3}, {"a bound of 1", 1, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			store := &aggregatetest.Store{}
			handle(t, store, deposit(1))
			// Another writer gets in before every append.
			store.BeforeAppend = func(ctx context.Context, streamID string) { handle(t, store, deposit(1)) }
			decisions := 0
			res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, func(a account) ([]client.Event, error) {
				decisions++
				return withdraw(1)(a)
			}, aggregate.Options{MaxAttempts: tt.maxAttempts, Backoff: time.Microsecond})

			if !errors.Is(err, aggregate.ErrTooManyConflicts) || !client.IsWrongExpectedVersion(err) || errors.Is(err, aggregate.ErrRejected) {
				t.Fatalf("Handle = %v, want too many conflicts wrapping wrong_expected_version", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("Account-1 changed under each of %d attempts", tt.wantAttempts)) {
				t.Errorf("error = %q, want the stream and the attempts named", err)
			}
			if res.Attempts != tt.wantAttempts || decisions != tt.wantAttempts {
				t.Errorf("attempts = %d, decisions = %d, want %d", res.Attempts, decisions, tt.wantAttempts)
			}
			for _, e := range store.Events("Account-1") {
				if e.Type == "Withdrawn" {
					t.Errorf("a withdrawal was stored at version %d", e.Version)
				}
			}
		})
	}
}

func TestHandleReadsALongStreamPageByPage(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int // the store's cap on a page; 0: as asked
		events    int
		wantReads int
	}{
		{"pages smaller than asked", 7, 50, 8},
		{"an exact number of pages", 5, 50, 10},
		{"pages of the API's limit", 0, 2500, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &aggregatetest.Store{PageSize: tt.pageSize}
			events := make([]client.Event, tt.events)
			for i := range events {
				events[i] = client.Event{Type: "Deposited", Data: amount{1}}
			}
			for len(events) > 0 {
				n := min(len(events), client.MaxAppendEvents)
				if _, err := store.Append(ctx, "Account-1", client.Any, events[:n]); err != nil {
					t.Fatal(err)
				}
				events = events[n:]
			}
			readsBefore, _ := store.Calls()
			var seen account
			res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, func(a account) ([]client.Event, error) {
				seen = a
				return deposit(1)(a)
			}, noWait)
			if err != nil {
				t.Fatal(err)
			}
			reads, _ := store.Calls()
			if seen.events != tt.events || seen.balance != tt.events || res.Version != int64(tt.events) {
				t.Errorf("decided on %+v at version %d, want all %d events", seen, res.Version, tt.events)
			}
			if got := reads - readsBefore; got != tt.wantReads {
				t.Errorf("%d reads, want %d", got, tt.wantReads)
			}
			if res.Appended.LastVersion != int64(tt.events)+1 {
				t.Errorf("appended up to version %d, want %d", res.Appended.LastVersion, tt.events+1)
			}
		})
	}
}

func TestARejectedCommandAppendsNothing(t *testing.T) {
	store := &aggregatetest.Store{}
	handle(t, store, deposit(3))
	res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, withdraw(4), noWait)
	var rejected *aggregate.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, errInsufficient) || !errors.Is(err, aggregate.ErrRejected) {
		t.Fatalf("Handle = %v, want a rejection wrapping the decision's error", err)
	}
	if err.Error() != "balance 3, cannot withdraw 4: insufficient funds" {
		t.Errorf("Error() = %q, want the decision's message as it is", err)
	}
	if _, appends := store.Calls(); appends != 1 || res.Attempts != 1 || res.Version != 1 {
		t.Errorf("%d appends, Result %+v; want only the deposit's, one attempt on version 1", appends, res)
	}
}

func TestADecisionOfNoEventsAppendsNothing(t *testing.T) {
	store := &aggregatetest.Store{}
	res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve,
		func(account) ([]client.Event, error) { return nil, nil }, noWait)
	if err != nil {
		t.Fatal(err)
	}
	if _, appends := store.Calls(); appends != 0 || res.Version != 0 || res.StreamVersion() != 0 || len(res.Appended.Events) != 0 {
		t.Errorf("%d appends, Result %+v; want none", appends, res)
	}
}

// failing is a Store whose appends fail with err.
type failing struct {
	aggregate.Store
	err     error
	appends int
}

func (f *failing) Append(context.Context, string, client.ExpectedVersion, []client.Event) (client.AppendResult, error) {
	f.appends++
	return client.AppendResult{}, f.err
}

func TestOtherAppendErrorsAreReturnedWithoutARetry(t *testing.T) {
	unavailable := &client.Error{Status: 503, Code: client.CodeUnavailable, Message: "the database is unreachable", EventIndex: -1}
	for _, appendErr := range []error{unavailable, errors.New("connection reset")} {
		store := &failing{Store: &aggregatetest.Store{}, err: appendErr}
		res, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, deposit(1), noWait)
		if !errors.Is(err, appendErr) || errors.Is(err, aggregate.ErrRejected) || !strings.Contains(err.Error(), "Account-1") {
			t.Errorf("Handle with appends failing with %v = %v, want that error, with the stream", appendErr, err)
		}
		if store.appends != 1 || res.Attempts != 1 {
			t.Errorf("%d appends in %d attempts, want 1", store.appends, res.Attempts)
		}
	}
}

func TestAnEventThatDoesNotEvolveStopsTheCommand(t *testing.T) {
	store := &aggregatetest.Store{}
	handle(t, store, deposit(1))
	if _, err := store.Append(ctx, "Account-1", 1, []client.Event{{Type: "Frozen", Data: map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	decided := false
	_, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, func(a account) ([]client.Event, error) {
		decided = true
		return nil, nil
	}, noWait)
	if err == nil || decided || errors.Is(err, aggregate.ErrRejected) {
		t.Fatalf("Handle = %v (decided: %v), want an error before any decision", err, decided)
	}
	if want := "load Account-1: Frozen at version 2: unknown event type Frozen"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// gappy is a Store whose reads skip a version.
type gappy struct{ aggregate.Store }

func (gappy) ReadStream(context.Context, string, int64, int) (client.StreamPage, error) {
	return client.StreamPage{Version: 3, Next: 4, Events: []client.RecordedEvent{
		{Type: "Deposited", Version: 1, Data: json.RawMessage(`{"amount": 1}`)},
		{Type: "Deposited", Version: 3, Data: json.RawMessage(`{"amount": 1}`)},
	}}, nil
}

func TestLoadRefusesAStreamWithAGap(t *testing.T) {
	_, _, err := aggregate.Load(ctx, gappy{}, "Account-1", account{}, evolve)
	if err == nil || !strings.Contains(err.Error(), "read version 3 after version 1") {
		t.Errorf("Load of a stream with a gap = %v, want an error naming it", err)
	}
}

func TestLoadOfAStreamThatDoesNotExistIsTheInitialState(t *testing.T) {
	a, version, err := aggregate.Load(ctx, &aggregatetest.Store{}, "Account-1", account{balance: 42}, evolve)
	if err != nil || version != 0 || a.balance != 42 {
		t.Errorf("Load = %+v, %d, %v; want the initial state at version 0", a, version, err)
	}
}

func TestHandleStopsWaitingWhenTheContextEnds(t *testing.T) {
	store := &aggregatetest.Store{}
	store.BeforeAppend = func(ctx context.Context, streamID string) { handle(t, store, deposit(1)) }
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, deposit(1),
		aggregate.Options{MaxAttempts: 100, Backoff: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Handle = %v, want the context's error", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Handle took %v after its context ended", elapsed)
	}
}

func TestConcurrentCommandsAllLandExactlyOnce(t *testing.T) {
	store := &aggregatetest.Store{}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				_, err := aggregate.Handle(ctx, store, "Account-1", account{}, evolve, deposit(1),
					aggregate.Options{MaxAttempts: writers * each, Backoff: time.Millisecond})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	events := store.Events("Account-1")
	for i, e := range events {
		if e.Version != int64(i+1) {
			t.Fatalf("events[%d] is at version %d", i, e.Version)
		}
	}
	if got := balance(t, store); got.balance != writers*each || len(events) != writers*each {
		t.Errorf("balance %d in %d events, want %d in %d", got.balance, len(events), writers*each, writers*each)
	}
}
