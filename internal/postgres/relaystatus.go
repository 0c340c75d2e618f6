package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
)

// RelayLease is the name of the relay's lease (AcquireLease), and of the
// row in which the relay that holds it reports its state.
const RelayLease = "relay"

var _ eventstore.RelayStatusReader = (*Store)(nil)

// SaveRelayReport saves the active relay's report as the relay lease's
// row, in place of the last one. Only the relay that holds the lease is
// meant to call it (relay.Options.Report).
func (s *Store) SaveRelayReport(ctx context.Context, rep eventstore.RelayReport) (err error) {
	defer wrap(&err, "save the relay's report")
	cp := rep.Checkpoint
	var at *time.Time
	if !cp.At.IsZero() {
		at = &cp.At
	}
	partitions := cp.Partitions
	if partitions == nil {
		partitions = map[string]int{}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO relay_status (lease, instance, active_since, checkpoint_position,
			checkpoint_published, checkpoint_at, partitions, halted, lag_seconds, checkpoint_cursor, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
		ON CONFLICT (lease) DO UPDATE SET instance = EXCLUDED.instance, active_since = EXCLUDED.active_since,
			checkpoint_position = EXCLUDED.checkpoint_position, checkpoint_published = EXCLUDED.checkpoint_published,
			checkpoint_at = EXCLUDED.checkpoint_at, partitions = EXCLUDED.partitions, halted = EXCLUDED.halted,
			lag_seconds = EXCLUDED.lag_seconds, checkpoint_cursor = EXCLUDED.checkpoint_cursor, updated_at = EXCLUDED.updated_at`,
		RelayLease, rep.Instance, rep.ActiveSince, cp.Position, cp.Published, at, partitions, rep.Halted, rep.LagSeconds, string(cp.Cursor))
	return translate(err)
}

// RelayStatus implements eventstore.RelayStatusReader: the relay's last
// report, whether the relay lease is held now (by any process: pg_locks
// of this database), and the lag in events past the report's checkpoint.
func (s *Store) RelayStatus(ctx context.Context) (st eventstore.RelayStatus, err error) {
	defer wrap(&err, "read the relay's status")
	// The lease is a session lock on the bigint hashtextextended(name, 0)
	// (see AcquireLease), which pg_locks shows in two halves: the high 32
	// bits as classid, the low as objid, with objsubid 1.
	var last int64
	err = s.pool.QueryRow(ctx, `WITH k AS (SELECT hashtextextended($1, 0) AS key)
		SELECT EXISTS (SELECT 1 FROM pg_locks, k WHERE locktype = 'advisory' AND granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND classid = ((k.key >> 32) & 4294967295)::oid AND objid = (k.key & 4294967295)::oid AND objsubid = 1),
			coalesce((SELECT position FROM events ORDER BY position DESC LIMIT 1), 0)`,
		s.schema+"."+RelayLease).Scan(&st.Active, &last)
	if err != nil {
		return st, translate(err)
	}
	var rep eventstore.RelayReport
	var at *time.Time
	err = s.pool.QueryRow(ctx, `SELECT instance, active_since, checkpoint_position, checkpoint_published,
			checkpoint_at, partitions, halted, lag_seconds, updated_at
		FROM relay_status WHERE lease = $1`, RelayLease).Scan(&rep.Instance, &rep.ActiveSince,
		&rep.Checkpoint.Position, &rep.Checkpoint.Published, &at, &rep.Checkpoint.Partitions,
		&rep.Halted, &rep.LagSeconds, &st.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return st, nil // no relay ever reported
	case err != nil:
		return st, translate(err)
	}
	if at != nil {
		rep.Checkpoint.At = *at
	}
	st.Last = &rep
	st.LagEvents = max(0, last-rep.Checkpoint.Position)
	return st, nil
}
