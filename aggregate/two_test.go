package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/client"
)

// transfer moves n from the first account to the second, if the first
// holds it.
func transfer(n int) func(from, to account) ([]client.Event, []client.Event, error) {
	return func(from, to account) ([]client.Event, []client.Event, error) {
		if from.balance < n {
			return nil, nil, fmt.Errorf("balance %d, cannot transfer %d: %w", from.balance, n, errInsufficient)
		}
		return []client.Event{{Type: "Withdrawn", Data: amount{n}}}, []client.Event{{Type: "Deposited", Data: amount{n}}}, nil
	}
}

func balanceOf(t *testing.T, store aggregate.Store, id string) int {
	t.Helper()
	a, _, err := aggregate.Load(ctx, store, id, account{}, evolve)
	if err != nil {
		t.Fatal(err)
	}
	return a.balance
}

func TestHandleTwoDecidesOnBothAggregatesAtOnce(t *testing.T) {
	store := &aggregatetest.Store{}
	if _, err := aggregate.Handle(ctx, store, "Account-a", account{}, evolve, deposit(100), noWait); err != nil {
		t.Fatal(err)
	}
	res, err := aggregate.HandleTwo(ctx, store, "Account-a", "Account-b", account{}, evolve, transfer(30), noWait)
	if err != nil || res.Attempts != 1 || len(res.Appended) != 2 || res.Appended[1].StreamID != "Account-b" || res.Appended[1].LastVersion != 1 {
		t.Fatalf("HandleTwo = %+v, %v", res, err)
	}
	if a, b := balanceOf(t, store, "Account-a"), balanceOf(t, store, "Account-b"); a != 70 || b != 30 {
		t.Errorf("balances %d and %d, want 70 and 30", a, b)
	}
	_, err = aggregate.HandleTwo(ctx, store, "Account-b", "Account-a", account{}, evolve, transfer(31), noWait)
	if !errors.Is(err, aggregate.ErrRejected) || !errors.Is(err, errInsufficient) {
		t.Errorf("an overdraft = %v, want rejected for insufficient funds", err)
	}
	if _, err := aggregate.HandleTwo(ctx, store, "Account-a", "Account-a", account{}, evolve, transfer(1), noWait); err == nil {
		t.Error("HandleTwo on one stream twice succeeded")
	}

	t.Run("a change to either stream makes it decide again", func(t *testing.T) {
		raced := &aggregatetest.Store{}
		aggregate.Handle(ctx, raced, "Account-a", account{}, evolve, deposit(10), noWait)
		once := sync.Once{}
		raced.BeforeAppend = func(ctx context.Context, id string) {
			once.Do(func() {
				// Another command empties the account between the read and the append.
				aggregate.Handle(ctx, raced, "Account-a", account{}, evolve, withdraw(10), noWait)
			})
		}
		_, err := aggregate.HandleTwo(ctx, raced, "Account-a", "Account-b", account{}, evolve, transfer(10), noWait)
		if !errors.Is(err, errInsufficient) {
			t.Errorf("a transfer decided on a stale balance = %v, want it decided again and rejected", err)
		}
		if b := balanceOf(t, raced, "Account-b"); b != 0 {
			t.Errorf("the second account holds %d after the rejected transfer", b)
		}
	})

	t.Run("a stream given no events is guarded", func(t *testing.T) {
		guarded := &aggregatetest.Store{}
		aggregate.Handle(ctx, guarded, "Account-x", account{}, evolve, deposit(5), noWait)
		aggregate.Handle(ctx, guarded, "Account-y", account{}, evolve, deposit(5), noWait)
		once := sync.Once{}
		guarded.BeforeAppend = func(ctx context.Context, id string) {
			once.Do(func() { aggregate.Handle(ctx, guarded, "Account-y", account{}, evolve, deposit(1), noWait) })
		}
		// Withdraw from x only when y holds exactly 5.
		onlyX := func(x, y account) ([]client.Event, []client.Event, error) {
			if y.balance != 5 {
				return nil, nil, errors.New("y changed")
			}
			return []client.Event{{Type: "Withdrawn", Data: amount{1}}}, nil, nil
		}
		_, err := aggregate.HandleTwo(ctx, guarded, "Account-x", "Account-y", account{}, evolve, onlyX, noWait)
		if err == nil || !errors.Is(err, aggregate.ErrRejected) {
			t.Errorf("a decision on y's state while y changed = %v, want it decided again on the new state (and rejected)", err)
		}
	})
}

// Transfers among five accounts from eight goroutines: every one is
// stored on both of its accounts or on neither, and the total holds.
func TestConcurrentTransfersConserveTheTotal(t *testing.T) {
	store := &aggregatetest.Store{}
	const accounts, each = 5, 100
	for i := range accounts {
		if _, err := aggregate.Handle(ctx, store, fmt.Sprintf("Account-%d", i), account{}, evolve, deposit(each), noWait); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 50 {
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				_, err := aggregate.HandleTwo(ctx, store, fmt.Sprintf("Account-%d", from), fmt.Sprintf("Account-%d", to), account{}, evolve,
					transfer(1+rng.IntN(30)), aggregate.Options{MaxAttempts: 100, Backoff: -1})
				if err != nil && !errors.Is(err, aggregate.ErrRejected) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range accounts {
		b := balanceOf(t, store, fmt.Sprintf("Account-%d", i))
		if b < 0 {
			t.Errorf("Account-%d is overdrawn: %d", i, b)
		}
		total += b
	}
	if total != accounts*each {
		t.Errorf("the accounts hold %d in all, want %d", total, accounts*each)
	}
}
