// Package aggregate handles commands on event-sourced aggregates: it loads an
// aggregate's state by replaying its stream, asks a decision function for
// the events a command produces, and appends them with the stream's version
// as the expected version, deciding again on a conflict.
//
// An aggregate is described by three things: its initial state, an evolve
// function that applies one stored event to a state, and, per command, a
// decide function that returns the events to append or an error that
// rejects the command:
//
//	res, err := aggregate.Handle(ctx, c, "Ticket-1", ticket{}, evolveTicket,
//		func(t ticket) ([]client.Event, error) { return t.Close(reason) }, aggregate.Options{})
//	if errors.Is(err, aggregate.ErrRejected) {
//		// the command broke a rule of the ticket's state; nothing was stored
//	}
//
// where c is a *client.Client. Strata's example domain, the Order aggregate
// of internal/orders, is written this way.
//
// The concurrency guarantee is optimistic: a decision made on the state at
// version N is stored only if the stream is still at version N when the
// append commits (the writer checks the expected version in the same
// transaction). Two commands racing on one stream therefore never both
// succeed on the same state: the one that loses gets 409
// wrong_expected_version, re-reads the stream with the winner's events and
// decides again, and may now be rejected. Commands on different streams do
// not wait for each other.
//
// A long stream need not be read whole for each command: with
// Options.Snapshots (a Snapshotter over a Snapshots store such as
// aggregate/pgsnapshots'), a load starts from a snapshot of the state and
// reads only the events after it, and new snapshots are taken in the
// background every SnapshotOptions.Every events. Snapshots only save
// reading: a command decides on the same state without them, and one that
// cannot be used is ignored.
package aggregate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/strata-events/strata/client"
)

// Store is what Handle needs of the event store: reading a stream forward
// page by page and appending with an expected version, with the HTTP API's
// semantics. *client.Client implements it; so does an in-memory store for
// tests (aggregatetest.Store).
type Store interface {
	// ReadStream returns events of the stream from version from, at most
	// limit of them, and the stream's version; a stream that does not
	// exist is an error for which client.IsStreamNotFound holds.
	ReadStream(ctx context.Context, streamID string, from int64, limit int) (client.StreamPage, error)
	// Append stores events if the stream's version meets expected; if it
	// does not, it stores nothing and returns an error for which
	// client.IsWrongExpectedVersion holds.
	Append(ctx context.Context, streamID string, expected client.ExpectedVersion, events []client.Event) (client.AppendResult, error)
}

var _ Store = (*client.Client)(nil)

// Defaults for Options.
const (
	DefaultMaxAttempts = 5
	DefaultBackoff     = 10 * time.Millisecond
)

// Options configures Handle; the zero value gives the defaults.
type Options struct {
	// MaxAttempts bounds how many times a command is decided and appended
	// when the stream keeps changing under it; default 5.
	MaxAttempts int
	// Backoff is the base of the wait before deciding again after a
	// conflict: before the k-th retry Handle waits a random time in
	// [0, Backoff·2^(k-1)), so that racing commands spread out. Default
	// 10ms; a negative Backoff does not wait.
	Backoff time.Duration
	// Snapshots, when set, makes each load start from the stream's latest
	// usable snapshot and read only the events after it, and takes new
	// snapshots in the background (see Snapshotter). Commands decide on
	// the same states with or without it. Default none: every load reads
	// the whole stream.
	Snapshots *Snapshotter
}

// Result reports what Handle did.
type Result struct {
	StreamID string
	// Version is the stream's version the last decision was made on; 0
	// when the stream did not exist.
	Version int64
	// Appended is the writer's answer to the append; zero when the
	// decision returned no events, or when there was an error.
	Appended client.AppendResult
	// Attempts is how many times the command was decided: 1 unless the
	// stream changed between a read and an append.
	Attempts int
}

// StreamVersion returns the stream's version after the command: that of
// the last event appended, or the version decided on when none was.
func (r Result) StreamVersion() int64 {
	if len(r.Appended.Events) > 0 {
		return r.Appended.LastVersion
	}
	return r.Version
}

// WaitFor returns the query parameters that make a projector's read API
// answer once the command's events are applied (client.WaitFor); none
// when the command appended nothing.
func (r Result) WaitFor() url.Values { return client.WaitFor(r.Appended) }

// ErrRejected is matched (errors.Is) by every *RejectedError.
var ErrRejected = errors.New("command rejected")

// ErrTooManyConflicts is matched (errors.Is) by the error of a Handle that
// met a conflict on each of its MaxAttempts appends. That error also wraps
// the last append's *client.Error (client.IsWrongExpectedVersion holds).
var ErrTooManyConflicts = errors.New("too many conflicts")

// RejectedError is a command that its decide function refused: nothing was
// appended. Its message is the decision's error's, which it wraps.
type RejectedError struct {
	StreamID string
	// Version is the stream's version the command was decided on.
	Version int64
	Err     error
}

func (e *RejectedError) Error() string { return e.Err.Error() }

// Unwrap returns the decision's error.
func (e *RejectedError) Unwrap() error { return e.Err }

// Is matches ErrRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Handle runs one command on the aggregate of stream streamID. It reads
// the whole stream, page by page, and folds its events into a state with
// evolve, starting from initial; it calls decide with that state; and it
// appends the events decide returns, expecting the stream to be at the
// version it read (client.NoStream when the stream did not exist). When
// the append meets a conflict (409 wrong_expected_version), the stream
// changed since it was read: Handle waits a short jittered backoff, reads
// it again and decides again, up to opts.MaxAttempts times. With
// opts.Snapshots, each read starts from the stream's latest usable
// snapshot and folds only the events after it (Snapshotter); the state is
// the same.
//
// So decide sees the state of a version N and its events are stored only
// if the stream is still at N. decide may run more than once per call and
// should do nothing but return events; initial is the starting point of
// every attempt, so evolve must not modify anything initial refers to
// (return a changed copy instead).
//
// A decide that returns no events and no error appends nothing: Handle
// returns a Result without Appended. An error from decide is returned as a
// *RejectedError wrapping it (errors.Is(err, ErrRejected)), with nothing
// appended. Conflicts on every attempt return an error matching
// ErrTooManyConflicts. Errors of evolve, of reading and of appending are
// returned wrapped, with the stream id; a *client.Error in them stays
// reachable with errors.As. The Result tells the attempts made and the
// version last decided on, also with an error.
func Handle[S any](ctx context.Context, store Store, streamID string, initial S,
	evolve func(S, client.RecordedEvent) (S, error), decide func(S) ([]client.Event, error), opts Options) (Result, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Backoff == 0 {
		opts.Backoff = DefaultBackoff
	}
	res := Result{StreamID: streamID}
	for {
		res.Attempts++
		state, version, err := load(ctx, store, streamID, initial, evolve, opts.Snapshots)
		if err != nil {
			return res, err
		}
		res.Version = version
		events, err := decide(state)
		if err != nil {
			return res, &RejectedError{StreamID: streamID, Version: version, Err: err}
		}
		if len(events) == 0 {
			return res, nil
		}
		expected := client.ExpectedVersion(version)
		if version == 0 {
			expected = client.NoStream
		}
		appended, err := store.Append(ctx, streamID, expected, events)
		switch {
		case err == nil:
			res.Appended = appended
			return res, nil
		case !client.IsWrongExpectedVersion(err):
			return res, fmt.Errorf("handle %s: %w", streamID, err)
		case res.Attempts >= opts.MaxAttempts:
			return res, fmt.Errorf("%w: stream %s changed under each of %d attempts: %w", ErrTooManyConflicts, streamID, res.Attempts, err)
		}
		if err := wait(ctx, opts.Backoff, res.Attempts); err != nil {
			return res, fmt.Errorf("handle %s: %w", streamID, err)
		}
	}
}

// Load returns the state of the aggregate of stream streamID, folding its
// events with evolve from initial, and the version it is at: 0, and
// initial, when the stream does not exist. It reads the stream in pages
// of client.MaxReadLimit events until it reaches the version the store
// reports. It fails if the store returns events out of order, or evolve
// fails.
func Load[S any](ctx context.Context, store Store, streamID string, initial S,
	evolve func(S, client.RecordedEvent) (S, error)) (S, int64, error) {
	state, version, _, err := replay(ctx, store, streamID, initial, 0, "", evolve)
	return state, version, err
}

// wait sleeps before retry number attempt: a random time below
// backoff·2^(attempt-1), or not at all for a negative backoff.
func wait(ctx context.Context, backoff time.Duration, attempt int) error {
	if backoff < 0 {
		return ctx.Err()
	}
	ceiling := backoff << min(attempt-1, 16)
	if ceiling < backoff { // overflowed
		ceiling = backoff
	}
	t := time.NewTimer(rand.N(ceiling))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
