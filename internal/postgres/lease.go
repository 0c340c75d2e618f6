package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is an exclusive, named lease held through PostgreSQL: a session
// advisory lock on a connection of its own. The database releases it when
// the holder's session ends — when its process dies, or its connection is
// cut (keepalives notice a vanished peer within about fifteen seconds) —
// so that a standby can take over. Safe for concurrent use.
type Lease struct {
	conn *pgx.Conn
	key  int64
}

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
				l := &Lease{conn: conn, key: key}
				conn = nil // the lease owns it now
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
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrLeaseLost, err)
	}
	return nil
}

// Held asks the database whether the lease's session holds the lock: a
// check for tests and diagnostics, heavier than Check.
func (l *Lease) Held(ctx context.Context) (bool, error) {
	var held bool
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
		AND granted AND ((classid::bigint << 32) | objid::bigint) = $1)`, l.key).Scan(&held)
	return held, err
}

// Release gives the lease up by ending its session.
func (l *Lease) Release() { l.conn.Close(context.Background()) }

// PID returns the server process holding the lease (tests cut it).
func (l *Lease) PID() uint32 { return l.conn.PgConn().PID() }
