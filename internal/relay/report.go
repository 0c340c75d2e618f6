package relay

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// Bounds on reports (Options.Report).
const (
	// ReportInterval is the least time between two reports of commits;
	// the start of a term and a halt are reported at once.
	ReportInterval = time.Second
	// reportTimeout bounds one call of Report.
	reportTimeout = 5 * time.Second
	// reportWarnEvery bounds how often failing reports are logged.
	reportWarnEvery = time.Minute
)

// reporter hands the relay's state to Options.Report from a goroutine of
// its own, so that a slow or failing Report never holds publishing up.
// The relay's loop only changes the state and marks it pending; the
// goroutine reports the latest state, commits at most once per
// ReportInterval, and tries a failed report again after the interval. A
// nil reporter reports nothing.
type reporter struct {
	report   func(context.Context, eventstore.RelayReport) error
	instance string
	log      *slog.Logger
	wake     chan struct{}

	mu      sync.Mutex
	state   eventstore.RelayReport
	pending bool // state is newer than the last report
	urgent  bool // pending, and not to wait for the interval

	// The goroutine's: the last report, and the failures since the
	// last warning.
	last, warned time.Time
	failures     int
}

func newReporter(opts Options, log *slog.Logger) *reporter {
	if opts.Report == nil {
		return nil
	}
	return &reporter{report: opts.Report, instance: opts.Instance, log: log, wake: make(chan struct{}, 1)}
}

// run reports until the returned stop is called, which waits for the
// goroutine to end: a relay stops reporting before it gives its lease up,
// so that its last report cannot land after its successor's first.
func (rp *reporter) run(ctx context.Context) (stop func()) {
	if rp == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rp.loop(ctx)
	}()
	return func() {
		cancel()
		<-done
		rp.mu.Lock()
		rp.pending, rp.urgent = false, false
		rp.mu.Unlock()
	}
}

func (rp *reporter) loop(ctx context.Context) {
	for ctx.Err() == nil {
		rp.mu.Lock()
		pending, urgent := rp.pending, rp.urgent
		rp.mu.Unlock()
		var wait <-chan time.Time
		switch d := time.Until(rp.last.Add(ReportInterval)); {
		case pending && (urgent || d <= 0):
			rp.send(ctx)
			continue
		case pending:
			wait = time.After(d)
		}
		select {
		case <-ctx.Done():
		case <-rp.wake:
		case <-wait:
		}
	}
}

// send reports the latest state; after a failure, it is pending again.
func (rp *reporter) send(ctx context.Context) {
	rp.mu.Lock()
	state := rp.state
	state.Checkpoint.Partitions = maps.Clone(state.Checkpoint.Partitions)
	rp.pending, rp.urgent = false, false
	rp.mu.Unlock()
	rp.last = time.Now()
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	err := rp.report(rctx, state)
	cancel()
	if err == nil || ctx.Err() != nil {
		return
	}
	rp.mu.Lock()
	rp.pending = true
	rp.mu.Unlock()
	if rp.failures++; time.Since(rp.warned) >= reportWarnEvery {
		rp.log.Warn("could not report the relay's state; publishing goes on", "error", err, "failures", rp.failures)
		rp.warned, rp.failures = time.Now(), 0
	}
}

// change applies fn to the state and marks it pending. It wakes the
// goroutine only when it may be idle or the change is urgent: one that
// waits for the interval reports the latest state anyway.
func (rp *reporter) change(urgent bool, fn func(*eventstore.RelayReport)) {
	if rp == nil {
		return
	}
	rp.mu.Lock()
	fn(&rp.state)
	wasPending := rp.pending
	rp.pending, rp.urgent = true, rp.urgent || urgent
	rp.mu.Unlock()
	if urgent || !wasPending {
		select {
		case rp.wake <- struct{}{}:
		default:
		}
	}
}

// started reports a term that began as the active relay since since, from
// checkpoint cp.
func (rp *reporter) started(since time.Time, cp Checkpoint) {
	rp.change(true, func(s *eventstore.RelayReport) {
		*s = eventstore.RelayReport{Instance: rp.instance, ActiveSince: since, Checkpoint: checkpointOf(cp)}
	})
}

// committed reports checkpoint cp, committed lagSeconds behind (see
// strata_relay_lag_seconds).
func (rp *reporter) committed(cp Checkpoint, lagSeconds float64) {
	rp.change(false, func(s *eventstore.RelayReport) {
		s.Checkpoint, s.LagSeconds = checkpointOf(cp), lagSeconds
	})
}

// halted reports a halt.
func (rp *reporter) halted(h *Halt) {
	rp.change(true, func(s *eventstore.RelayReport) {
		s.Halted = &eventstore.RelayHalt{Reason: h.Reason, Message: h.Message, Remedy: h.Remedy, Since: h.Since}
	})
}

func checkpointOf(cp Checkpoint) eventstore.RelayCheckpoint {
	return eventstore.RelayCheckpoint{Cursor: cp.Cursor, Position: cp.Position, Published: cp.Published, At: cp.At, Partitions: cp.Partitions}
}
