package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/eventstore"
)

// When the connection fails after an append was sent — the server crashed
// or restarted, the network broke, the request's deadline passed — the
// append may have committed or not. Reporting a failure for events that were
// stored would be a lie, so the store settles the outcome first: it makes
// sure the server process that ran the append is gone (terminating it if it
// still runs, so that it cannot commit later), then looks the event ids up.

// backend identifies the server process behind a connection: its pid, and
// its start time, which tells it from a later process with the same pid.
type backend struct {
	pid   uint32
	start time.Time
}

const backendStartKey = "strata.backend_start"

// recordBackend is the pool's AfterConnect hook: it notes the new
// connection's server process start time, and whether the connection goes
// through a connection pooler (see errPooled).
//
// It also notes when the server started. A server that started since the
// last connection was made may be another one — a promoted replica, a
// restored backup — that lacks the last events this process saw
// committed, so the store forgets the versions it knew (knownVersions):
// an append trusting one would leave a gap in its stream.
func (s *Store) recordBackend(ctx context.Context, c *pgx.Conn) error {
	var pid int64
	var start, serverStart time.Time
	err := c.QueryRow(ctx, "SELECT pid, backend_start, pg_postmaster_start_time() FROM pg_stat_activity WHERE pid = pg_backend_pid()").
		Scan(&pid, &start, &serverStart)
	if err != nil {
		return fmt.Errorf("read backend start: %w", err)
	}
	if old := s.serverStart.Swap(serverStart.UnixNano()); old != 0 && old != serverStart.UnixNano() {
		s.versions.forget()
		s.log.Warn("the database server restarted, failed over or was restored: stream versions are looked up again",
			"server_start", serverStart)
	}
	c.PgConn().CustomData()[backendStartKey] = start
	if pid != int64(c.PgConn().PID()) && !s.pooled.Swap(true) {
		s.log.Error("the database connection goes through a connection pooler: appends will be refused", "server_pid", pid, "reported_pid", c.PgConn().PID())
	}
	s.connected.Store(true)
	return nil
}

// errPooled refuses appends on a store whose connections go through a
// connection pooler (PgBouncer, pgcat, RDS Proxy, ...). Such a pooler
// gives the client a process id of its own making, which is how it is
// told apart from a direct connection (or a TCP proxy, which passes the
// server's through). Behind it, settle cannot know which server process
// runs an append, so it could not stop one whose answer was lost, and
// might report failed an append that commits later.
var errPooled = &unavailableError{cause: errors.New("appends are refused: the database connection goes through a connection pooler " +
	"(the server process id it reports is not the server's), and the outcome of an append whose connection fails can only be " +
	"settled on a direct connection; connect the writer to PostgreSQL directly")}

// checkDirect returns errPooled when the store's connections go through a
// pooler, making a first connection to learn it if none was made yet.
func (s *Store) checkDirect(ctx context.Context) error {
	if !s.connected.Load() {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		c.Release()
	}
	if s.pooled.Load() {
		return errPooled
	}
	return nil
}

func backendOf(c *pgxpool.Conn) backend {
	pg := c.Conn().PgConn()
	start, _ := pg.CustomData()[backendStartKey].(time.Time)
	return backend{pid: pg.PID(), start: start}
}

// ambiguous reports whether err leaves an append's outcome unknown: the
// statement may have reached the server and the answer was lost.
func ambiguous(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.Canceled) {
		return false // the caller left; nobody waits for the answer
	}
	if pgconn.SafeToRetry(err) {
		return false // nothing was sent
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !isUnavailable(err) {
		return false // the server answered: the statement failed
	}
	return isUnavailable(err) || errors.Is(err, context.DeadlineExceeded)
}

// OutcomeUnknownError reports an append whose connection failed after it
// was sent, when the store could not learn within its settle timeout
// whether it committed. The append was atomic: all of its events are
// stored, or none. Retrying with the same event ids is safe and tells.
type OutcomeUnknownError struct {
	Stream  eventstore.StreamID
	Timeout time.Duration
	Cause   error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("the database connection failed during the append to %s and whether it committed could not be learned within %s "+
		"(all of its events are stored or none is; retry with the same event ids, which is safe): %v", e.Stream, e.Timeout, e.Cause)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Cause }

// OutcomeUnknown returns true: whatever its cause, and though its code is
// unavailable, the append may have been stored. The HTTP API tells it from
// an unavailable error that stored nothing by this method.
func (e *OutcomeUnknownError) OutcomeUnknown() bool { return true }

// ErrorCode returns unavailable.
func (e *OutcomeUnknownError) ErrorCode() string { return eventstore.CodeUnavailable }

// Is matches eventstore.ErrUnavailable.
func (e *OutcomeUnknownError) Is(target error) bool { return eventstore.ErrUnavailable.Is(target) }

// unsettled is an append whose outcome settle is to learn.
type unsettled struct {
	stream eventstore.StreamID
	events []eventstore.EventData
	res    eventstore.AppendResult
	err    error
	done   bool
}

// settle learns the outcome of an append that failed with cause after it
// was sent on backend b. It returns the append's result when it committed,
// an unavailable error when it certainly did not, and an
// *OutcomeUnknownError when the database stays out of reach.
func (s *Store) settle(stream eventstore.StreamID, events []eventstore.EventData, b backend, cause error) (eventstore.AppendResult, error) {
	u := &unsettled{stream: stream, events: events}
	s.settleAll([]*unsettled{u}, b, cause)
	return u.res, u.err
}

// settleAll settles appends that were sent together on backend b, within
// one settle timeout for them all.
func (s *Store) settleAll(us []*unsettled, b backend, cause error) {
	deadline := time.Now().Add(s.settleTimeout)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := s.trySettle(us, &b, time.Until(deadline))
		if err == nil {
			for _, u := range us {
				if u.err == nil {
					s.log.Info("an append whose connection failed had committed", "stream", u.stream.String(), "cause", cause)
				}
			}
			return
		}
		if time.Until(deadline) < wait {
			s.log.Warn("could not learn whether appends committed", "appends", len(us), "cause", cause, "last_error", err)
			for _, u := range us {
				if !u.done {
					u.err = &OutcomeUnknownError{Stream: u.stream, Timeout: s.settleTimeout, Cause: cause}
				}
			}
			return
		}
		time.Sleep(wait)
	}
}

// trySettle makes one attempt, and returns an error when the database
// could not be asked about every append.
func (s *Store) trySettle(us []*unsettled, b *backend, budget time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), min(budget, 5*time.Second))
	defer cancel()
	if b.pid != 0 {
		if err := s.endBackend(ctx, *b); err != nil {
			return err
		}
		*b = backend{} // gone for good
	}
	for _, u := range us {
		if u.done {
			continue
		}
		res, found, err := s.findStored(ctx, u.stream, u.events)
		switch {
		case err != nil && isUnavailable(err):
			return err
		case err != nil:
			u.err = err
		case !found:
			u.err = &unavailableError{cause: fmt.Errorf("the append to %s did not commit", u.stream)}
		default:
			res.Replayed = false // this append stored them; its answer was only delayed
			u.res = res
		}
		u.done = true
	}
	return nil
}

// endBackend terminates the server process b if it still runs and waits
// until it is gone, after which its transaction is settled either way.
func (s *Store) endBackend(ctx context.Context, b backend) error {
	const alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2"
	if _, err := s.pool.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2", int64(b.pid), b.start); err != nil {
		return err
	}
	for {
		var n int
		if err := s.pool.QueryRow(ctx, alive, int64(b.pid), b.start).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
