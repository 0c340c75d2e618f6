package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-events/strata/internal/eventstore"
)

// Read-your-writes: a read API waits, before it reads a read model, until
// the projections behind it have applied the events a client wrote. A
// projection has applied an event once the version guard
// (projection_streams) of its serving generation holds the event's
// version or a later one; the guard holds every event of the
// projection's categories, whether a handler used it or not.

// WaitPollInterval is how often WaitFor reads the projections' progress
// again. Another worker of the projection may apply the event, so the
// read-model database is the only place that knows.
const WaitPollInterval = 5 * time.Millisecond

// WaitTimeoutError is a wait that ended before a projection had applied
// an event waited for (code wait_timeout).
type WaitTimeoutError struct {
	Projection string
	Wanted     eventstore.Written
	Applied    int64 // the version of the stream the projection had applied
	Timeout    time.Duration
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("projection %s had not applied %s@%d within %s: it had applied the stream up to version %d",
		e.Projection, e.Wanted.Stream, e.Wanted.Version, e.Timeout, e.Applied)
}

// ErrorCode returns wait_timeout.
func (e *WaitTimeoutError) ErrorCode() string { return eventstore.CodeWaitTimeout }

// HaltedError is a wait on a halted projection (code projection_halted):
// it applies nothing until an operator resumes it.
type HaltedError struct {
	Projection string
	Halt       *Halt
}

func (e *HaltedError) Error() string {
	msg := fmt.Sprintf("projection %s is halted and applies nothing until `projector resume %s`", e.Projection, e.Projection)
	if e.Halt != nil {
		msg += fmt.Sprintf(": %s (%s partition %d offset %d)", e.Halt.Error, e.Halt.Topic, e.Halt.Partition, e.Halt.Offset)
	}
	return msg
}

// ErrorCode returns projection_halted.
func (e *HaltedError) ErrorCode() string { return eventstore.CodeProjectionHalted }

// WaitFor returns once each of projections has applied every event of
// written, or a *WaitTimeoutError after timeout, or a *HaltedError as soon
// as one of them is halted. No projections means every projection defined
// here that reads the event's category. An event of a category that a
// projection defined here does not read is an invalid_request: it would
// never be applied.
func (m *Monitor) WaitFor(ctx context.Context, projections []string, written []eventstore.Written, timeout time.Duration) error {
	waits := map[string][]eventstore.Written{}
	for _, w := range written {
		category := w.Stream.Category()
		if len(projections) == 0 {
			n := 0
			for name, categories := range m.defs {
				if slices.Contains(categories, category) {
					waits[name] = append(waits[name], w)
					n++
				}
			}
			if n == 0 {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "no projection of this projector reads category %s (of %s)", category, w.Stream)
			}
			continue
		}
		for _, name := range projections {
			if categories, ok := m.defs[name]; ok && !slices.Contains(categories, category) {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "projection %s does not read category %s (of %s): it reads %v",
					name, category, w.Stream, categories)
			}
			waits[name] = append(waits[name], w)
		}
	}
	if len(waits) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	names := make([]string, 0, len(waits))
	for name := range waits {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := m.waitOne(wctx, name, waits[name], timeout); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	return nil
}

// waitOne waits for one projection.
func (m *Monitor) waitOne(ctx context.Context, projection string, written []eventstore.Written, timeout time.Duration) error {
	streams := make([]string, len(written))
	for i, w := range written {
		streams[i] = w.Stream.String()
	}
	tick := time.NewTicker(WaitPollInterval)
	defer tick.Stop()
	last := &progress{versions: map[string]int64{}}
	for {
		applied, err := m.applied(ctx, projection, streams)
		switch {
		case err == nil:
			last = applied
		case ctx.Err() == nil:
			return err
		}
		pending := slices.IndexFunc(written, func(w eventstore.Written) bool { return last.versions[w.Stream.String()] < w.Version })
		switch {
		case pending < 0:
			return nil
		case last.state == StateHalted:
			return &HaltedError{Projection: projection, Halt: last.halt}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return &WaitTimeoutError{Projection: projection, Wanted: written[pending], Applied: last.versions[streams[pending]], Timeout: timeout}
		}
	}
}

// progress is what a projection has applied of some streams.
type progress struct {
	state    string
	halt     *Halt
	versions map[string]int64
}

// applied reads the versions of streams that projection's serving
// generation has applied; a projection not set up yet has applied none.
func (m *Monitor) applied(ctx context.Context, projection string, streams []string) (*progress, error) {
	rows, err := m.db.Query(ctx, appliedSQL(m.book.schema), projection, streams)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // no bookkeeping yet
			return &progress{state: StateNew, versions: map[string]int64{}}, nil
		}
		return nil, err
	}
	p := &progress{state: StateNew, versions: map[string]int64{}}
	var stream string
	var version int64
	_, err = pgx.ForEachRow(rows, []any{&p.state, &p.halt, &stream, &version}, func() error {
		p.versions[stream] = version
		return nil
	})
	return p, err
}

// appliedSQL reads the state of projection $1 and the versions its
// serving generation has applied of streams $2. Each version is a scalar
// subquery, one index probe per stream: a join, even a lateral one, may
// be planned (generically, with the estimates of a table analyzed while
// small) as a hash join over the projection's every stream.
func appliedSQL(schema string) string {
	return `SELECT p.state, p.halted_event, u.stream_id,
		coalesce((SELECT version FROM ` + schema + `.projection_streams
			WHERE projection = p.name AND generation = p.generation AND stream_id = u.stream_id), 0)
		FROM ` + schema + `.projections p
		CROSS JOIN unnest($2::text[]) AS u(stream_id)
		WHERE p.name = $1`
}
