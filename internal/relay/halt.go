package relay

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrHalted is what every *HaltError is: publishing cannot go on until an
// operator acts, and trying again would fail the same way.
var ErrHalted = errors.New("the relay halted")

// HaltError stops the relay for good, for a reason that does not go away
// by itself: an event too large for Kafka, a topic whose partition count
// changed, a checkpoint the store refuses. A Publisher returns it (the relay
// makes one itself for a refused checkpoint); the relay then stops
// publishing, logs it at error level, reports it in
// strata_relay_halted{reason} and Status, and keeps its lease — a standby
// would meet the same wall — until it is restarted. It never retries the
// batch.
type HaltError struct {
	// Reason is a short label, as in strata_relay_halted{reason}:
	// "event_too_large", "partitions_changed", "topic_config",
	// "checkpoint_refused".
	Reason string
	// The event it stopped at, when it stopped at one: its stream,
	// version, global position and size as a Kafka record, and the limit.
	Stream   string
	Version  int64
	Position int64
	Size     int
	Limit    int
	// Topic is the Kafka topic concerned, if any.
	Topic string
	// Message says what happened; Remedy what an operator does about it.
	Message, Remedy string
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("refusing to publish (%s): %s; %s", e.Reason, e.Message, e.Remedy)
}

// Is makes every HaltError an ErrHalted.
func (e *HaltError) Is(target error) bool { return target == ErrHalted }

// Halt is a halt as Status reports it.
type Halt struct {
	HaltError
	Since time.Time
}

// Status is the relay's state.
type Status struct {
	// Active is true while this relay holds the lease.
	Active bool
	// Halted is set while the relay is halted.
	Halted *Halt
}

// Status returns the relay's state. It is safe for concurrent use.
func (r *Relay) Status() Status {
	return Status{Active: r.active.Load(), Halted: r.halted.Load()}
}

// halt holds the lease without publishing until ctx ends or the lease is
// lost, after a HaltError: nothing is retried.
func (r *Relay) halt(ctx context.Context, lease Lease, h *HaltError) error {
	halt := &Halt{HaltError: *h, Since: time.Now()}
	// The gauge first: whoever sees the halt in Status sees it in the
	// metric too.
	gauge := r.metrics.halted.WithLabelValues(h.Reason)
	gauge.Set(1)
	r.halted.Store(halt)
	r.reports.halted(halt)
	defer func() { r.halted.Store(nil); gauge.Set(0) }()
	args := []any{"reason", h.Reason, "error", h.Message, "remedy", h.Remedy}
	if h.Stream != "" {
		args = append(args, "stream", h.Stream, "version", h.Version, "position", h.Position, "size", h.Size, "limit", h.Limit)
	}
	if h.Topic != "" {
		args = append(args, "topic", h.Topic)
	}
	r.log.Error("publishing halted: the relay keeps its lease and publishes nothing until it is restarted", args...)
	tick := time.NewTicker(r.opts.LeaseCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := lease.Check(ctx); err != nil {
				return fmt.Errorf("%w while halted: %v", errLeaseLost, err)
			}
		}
	}
}
