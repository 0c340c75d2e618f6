package aggregate

import (
	"context"
	"fmt"

	"github.com/strata-events/strata/client"
)

// MultiStore is a Store that also appends to several streams in one
// transaction, as the writer's POST /v1/events does. *client.Client
// implements it, and so does aggregatetest.Store.
type MultiStore interface {
	Store
	AppendMulti(ctx context.Context, appends []client.StreamAppend, guards []client.Guard) ([]client.AppendResult, error)
}

var _ MultiStore = (*client.Client)(nil)

// TwoResult reports what HandleTwo did.
type TwoResult struct {
	StreamIDs [2]string
	// Versions are the streams' versions the last decision was made on.
	Versions [2]int64
	// Appended are the writer's answers, one per stream that received
	// events (in the order of StreamIDs); none when the decision returned
	// no events.
	Appended []client.AppendResult
	// Attempts is how many times the command was decided.
	Attempts int
}

// HandleTwo runs one command that decides on two aggregates of one kind
// at once, such as a transfer between two accounts. It loads both streams
// (Load), calls decide with both states, and appends the events decide
// returns for each in one transaction (MultiStore.AppendMulti), expecting
// each stream at the version it read. A stream that decide gives no event
// is guarded at that version all the same: the decision was made on it.
// On a conflict on either stream it waits, loads both again and decides
// again, up to opts.MaxAttempts times, as Handle does, and starts from
// snapshots as Handle does with opts.Snapshots. Errors as Handle's;
// a rejection's *RejectedError names the first stream.
func HandleTwo[S any](ctx context.Context, store MultiStore, first, second string, initial S,
	evolve func(S, client.RecordedEvent) (S, error), decide func(first, second S) ([]client.Event, []client.Event, error), opts Options) (TwoResult, error) {
	if first == second {
		return TwoResult{}, fmt.Errorf("handle two: %s twice: a command on one aggregate is Handle's", first)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Backoff == 0 {
		opts.Backoff = DefaultBackoff
	}
	res := TwoResult{StreamIDs: [2]string{first, second}}
	for {
		res.Attempts++
		var states [2]S
		for i, id := range res.StreamIDs {
			state, version, err := load(ctx, store, id, initial, evolve, opts.Snapshots)
			if err != nil {
				return res, err
			}
			states[i], res.Versions[i] = state, version
		}
		ea, eb, err := decide(states[0], states[1])
		if err != nil {
			return res, &RejectedError{StreamID: first, Version: res.Versions[0], Err: err}
		}
		if len(ea) == 0 && len(eb) == 0 {
			return res, nil
		}
		var appends []client.StreamAppend
		var guards []client.Guard
		for i, events := range [2][]client.Event{ea, eb} {
			expected := client.ExpectedVersion(res.Versions[i])
			if res.Versions[i] == 0 {
				expected = client.NoStream
			}
			if len(events) == 0 {
				guards = append(guards, client.Guard{StreamID: res.StreamIDs[i], ExpectedVersion: expected})
				continue
			}
			appends = append(appends, client.StreamAppend{StreamID: res.StreamIDs[i], ExpectedVersion: expected, Events: events})
		}
		appended, err := store.AppendMulti(ctx, appends, guards)
		switch {
		case err == nil:
			res.Appended = appended
			return res, nil
		case !client.IsWrongExpectedVersion(err):
			return res, fmt.Errorf("handle %s and %s: %w", first, second, err)
		case res.Attempts >= opts.MaxAttempts:
			return res, fmt.Errorf("%w: streams %s and %s changed under each of %d attempts: %w", ErrTooManyConflicts, first, second, res.Attempts, err)
		}
		if err := wait(ctx, opts.Backoff, res.Attempts); err != nil {
			return res, fmt.Errorf("handle %s and %s: %w", first, second, err)
		}
	}
}
