// Package pgsnapshots keeps aggregate snapshots (aggregate.Snapshots) in a
// PostgreSQL table, aggregate_snapshots, in a schema of the application's
// choosing: the store's own database and schema (STRATA_DATABASE_SCHEMA)
// will do, or any other database the service can write.
//
// The table holds the latest snapshot of each stream and snapshot schema
// version, one row each, replaced by later ones:
//
//	aggregate_snapshots (stream_id text, snapshot_schema text, version bigint,
//	    event_id text, state bytea, taken_at timestamptz,
//	    PRIMARY KEY (stream_id, snapshot_schema))
//
// Its rows are an optimisation only: truncating the table changes no
// command's decision, and rows of schema versions no longer used can be
// deleted at any time (Delete).
package pgsnapshots

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/aggregate"
)

// Store is an aggregate.Snapshots in PostgreSQL. It is safe for
// concurrent use; it does not own its pool.
type Store struct {
	pool  *pgxpool.Pool
	table string // quoted, with its schema when one was named
}

var _ aggregate.Snapshots = (*Store)(nil)

// New returns a Store over the table aggregate_snapshots of schema,
// creating the table if it does not exist (the schema must). An empty
// schema means the first of the connection's search_path. It fails if
// the table cannot be created.
func New(ctx context.Context, pool *pgxpool.Pool, schema string) (*Store, error) {
	table := pgx.Identifier{"aggregate_snapshots"}
	if schema != "" {
		table = pgx.Identifier{schema, "aggregate_snapshots"}
	}
	s := &Store{pool: pool, table: table.Sanitize()}
	ddl := `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
		stream_id text NOT NULL,
		snapshot_schema text NOT NULL,
		version bigint NOT NULL,
		event_id text NOT NULL,
		state bytea NOT NULL,
		taken_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (stream_id, snapshot_schema))`
	_, err := pool.Exec(ctx, ddl)
	if raced(err) {
		// Another process created it at the same moment.
		_, err = pool.Exec(ctx, ddl)
	}
	if err != nil {
		return nil, fmt.Errorf("pgsnapshots: create %s: %w", s.table, err)
	}
	return s, nil
}

// raced reports whether err is a CREATE TABLE IF NOT EXISTS that lost a
// race with another: PostgreSQL then reports a unique violation in its
// catalog, or the table as existing.
func raced(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P07")
}

// Load returns the stream's snapshot of schema; false when there is none.
func (s *Store) Load(ctx context.Context, streamID, schema string) (aggregate.Snapshot, bool, error) {
	snap := aggregate.Snapshot{StreamID: streamID, Schema: schema}
	err := s.pool.QueryRow(ctx, `SELECT version, event_id, state FROM `+s.table+`
		WHERE stream_id = $1 AND snapshot_schema = $2`, streamID, schema).Scan(&snap.Version, &snap.EventID, &snap.State)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return aggregate.Snapshot{}, false, nil
	case err != nil:
		return aggregate.Snapshot{}, false, fmt.Errorf("pgsnapshots: load %s %s: %w", schema, streamID, err)
	}
	return snap, true, nil
}

// Save stores snap as its stream's snapshot of its schema, unless one of
// a later version is held; one of the same version is replaced, so that a
// save after a dropped snapshot always lands.
func (s *Store) Save(ctx context.Context, snap aggregate.Snapshot) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.table+` AS t (stream_id, snapshot_schema, version, event_id, state)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (stream_id, snapshot_schema) DO UPDATE
		SET version = excluded.version, event_id = excluded.event_id, state = excluded.state, taken_at = now()
		WHERE excluded.version >= t.version`,
		snap.StreamID, snap.Schema, snap.Version, snap.EventID, snap.State)
	if err != nil {
		return fmt.Errorf("pgsnapshots: save %s %s at %d: %w", snap.Schema, snap.StreamID, snap.Version, err)
	}
	return nil
}

// Drop removes the stream's snapshot of snap.Schema if it is still the one
// of snap.Version: a later one, saved meanwhile, stays.
func (s *Store) Drop(ctx context.Context, snap aggregate.Snapshot) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM `+s.table+` WHERE stream_id = $1 AND snapshot_schema = $2 AND version = $3`,
		snap.StreamID, snap.Schema, snap.Version)
	if err != nil {
		return fmt.Errorf("pgsnapshots: drop %s %s at %d: %w", snap.Schema, snap.StreamID, snap.Version, err)
	}
	return nil
}

// Delete removes every snapshot of a snapshot schema version, such as
// those of a fold no longer used, and returns how many it removed.
func (s *Store) Delete(ctx context.Context, schema string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.table+` WHERE snapshot_schema = $1`, schema)
	if err != nil {
		return 0, fmt.Errorf("pgsnapshots: delete %s: %w", schema, err)
	}
	return tag.RowsAffected(), nil
}

// DeleteAll removes every snapshot. Commands then read their streams
// whole until new snapshots are taken; they decide the same.
func (s *Store) DeleteAll(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `TRUNCATE `+s.table); err != nil {
		return fmt.Errorf("pgsnapshots: delete all: %w", err)
	}
	return nil
}
