package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is an exclusive, named lease held through PostgreSQL: a session
// advisory lock on a connection of its own. The database releases it when
// the holder's session ends — when its process dies, or its connection is
// cut (keepalives notice a vanished peer within about fifteen seconds) —
// so that a standby can take over.
//
// A process that stops running without dying (SIGSTOP, a frozen machine
// whose connections a proxy or NAT keeps open) would hold the lock for as
// long as it is stopped: keepalives are answered by the kernel or by the
// proxy, not by the process. So the lease also expires: the server ends a
// lease session that has sent nothing for LeaseTTL (idle_session_timeout,
// PostgreSQL 14 and later), and the lease sends a ping every LeaseTTL/5
// from a goroutine of its own for as long as its process runs. Safe for
// concurrent use.
type Lease struct {
	mu       sync.Mutex // the connection, shared by the keeper and callers
	conn     *pgx.Conn
	key      int64
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// LeaseTTL is how long a lease outlives the last sign of life of a holder
// that stopped running (on PostgreSQL 14 and later; older servers end a
// lease only with its session).
const LeaseTTL = 5 * time.Second

// AcquireLease waits until it holds the lease called name in the store's
// schema (trying every retry interval), or until ctx ends.
func (s *Store) AcquireLease(ctx context.Context, name string, retry time.Duration) (*Lease, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	// Let the server notice a holder that vanished without closing.
	cfg.RuntimeParams["tcp_keepalives_idle"] = "5"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "2"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	cfg.RuntimeParams["application_name"] = "strata lease " + name
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil && ctx.Err() == nil {
				conn = nil
				s.log.Warn("lease: cannot connect, will try again", "lease", name, "error", err)
			}
		}
		if conn != nil {
			var key int64
			var got bool
			err := conn.QueryRow(ctx, "SELECT hashtextextended($1, 0), pg_try_advisory_lock(hashtextextended($1, 0))",
				s.schema+"."+name).Scan(&key, &got)
			if err == nil && got {
				if err := expireWhenSilent(ctx, conn); err != nil {
					s.log.Warn("lease: holding it without an expiry: a stopped holder keeps it until its session ends", "lease", name, "error", err)
				}
				l := &Lease{conn: conn, key: key, stop: make(chan struct{}), done: make(chan struct{})}
				conn = nil // the lease owns it now
				go l.keep()
				return l, nil
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("lease: cannot ask for the lock, will try again", "lease", name, "error", err)
				conn.Close(context.Background())
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retry):
		}
	}
}

// expireWhenSilent has the server end the session once it has been idle
// for LeaseTTL, where the server knows the setting.
func expireWhenSilent(ctx context.Context, conn *pgx.Conn) error {
	if v, err := strconv.Atoi(conn.PgConn().ParameterStatus("server_version_num")); err == nil && v < 140000 {
		return fmt.Errorf("PostgreSQL %s has no idle_session_timeout", conn.PgConn().ParameterStatus("server_version"))
	}
	_, err := conn.Exec(ctx, "SELECT set_config('idle_session_timeout', $1, false)", strconv.FormatInt(LeaseTTL.Milliseconds(), 10))
	return err
}

// keep pings the session every LeaseTTL/5 until Release, or until a ping
// fails: then the lease is lost, which Check reports.
func (l *Lease) keep() {
	defer close(l.done)
	tick := time.NewTicker(LeaseTTL / 5)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		l.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), LeaseTTL/2)
		err := l.conn.Ping(ctx)
		cancel()
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// ErrLeaseLost means the lease's session ended or no longer holds the lock.
var ErrLeaseLost = errors.New("the lease is lost")

// Check returns nil while the lease is held. A session lock is held as
// long as its session lives (nothing here unlocks it), so Check asks the
// session to answer: it fails when the session has been cut, even if this
// process did not notice. A connection pooler in transaction mode would
// break this: the lease needs a session of its own.
func (l *Lease) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrLeaseLost, err)
	}
	return nil
}

// Held asks the database whether the lease's session holds the lock: a
// check for tests and diagnostics, heavier than Check.
func (l *Lease) Held(ctx context.Context) (bool, error) {
	var held bool
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
		AND granted AND ((classid::bigint << 32) | objid::bigint) = $1)`, l.key).Scan(&held)
	return held, err
}

// Release gives the lease up: it unlocks, so that the lease is free when
// Release returns, and ends the session. Closing alone would free it only
// once the server notices, a moment later, and a successor (or a status
// read) could still see it held.
func (l *Lease) Release() {
	l.silence()
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// If the unlock fails, the session is already cut or about to end,
	// which frees the lock too.
	_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", l.key)
	l.conn.Close(ctx)
}

// silence stops the pings, as the holder's stopping would.
func (l *Lease) silence() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// PID returns the server process holding the lease (tests cut it).
func (l *Lease) PID() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn.PgConn().PID()
}
