package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MinServerVersion is the oldest PostgreSQL the store runs on: xid8 and
// pg_current_snapshot() arrived in 13.
const MinServerVersion = 130000

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: name must start with a number and _", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(e.Name(), ".sql"), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// MigrateOptions changes what Migrate does.
type MigrateOptions struct {
	// Rebaseline rewrites the stored transaction ids to the server's
	// current one, for a database restored from a logical dump, and
	// invalidates every cursor issued before.
	Rebaseline bool
	// Force re-baselines a store whose ids are not ahead of the server's,
	// which Rebaseline alone refuses (ErrRebaselineNotNeeded): it costs
	// every reader a read of the whole store again, and the relay halts.
	Force bool
}

// Migrate creates or upgrades the store's tables to the newest version,
// atomically, and returns the names of the migrations it applied (none
// when the schema was current). Concurrent calls wait for each other.
//
// It refuses, with ErrTxIDsAhead, a database whose stored transaction ids
// are ahead of the server's, unless opts.Rebaseline is set.
func (s *Store) Migrate(ctx context.Context, opts MigrateOptions) (applied []string, err error) {
	defer wrap(&err, "migrate")
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkServerVersion(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strata.migrate.' || $1))", s.schema); err != nil {
			return err
		}
		stmts := []string{
			"CREATE SCHEMA IF NOT EXISTS " + quoteIdent(s.schema),
			`CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`,
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
			applied = append(applied, m.name)
		}
		if opts.Rebaseline {
			return rebaseline(ctx, tx, opts.Force)
		}
		return nil
	})
	if err != nil {
		return nil, translate(err)
	}
	if err := s.Check(ctx); err != nil {
		return applied, err
	}
	return applied, nil
}

func appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	rows, err := q.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	done := make(map[int]bool, len(versions))
	for _, v := range versions {
		done[int(v)] = true
	}
	return done, nil
}

func checkServerVersion(ctx context.Context, q querier) error {
	var v int
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		return err
	}
	if v < MinServerVersion {
		return fmt.Errorf("PostgreSQL %d.%d is too old: the store needs 13 or newer (xid8 and pg_current_snapshot)", v/10000, v%10000)
	}
	return nil
}

// ErrTxIDsAhead means the events table holds transaction ids that this
// server has not issued yet: the database was restored from a logical dump
// (or its files moved to another cluster). Reading positions from it would
// misorder events, so the store refuses to run until it is re-baselined.
var ErrTxIDsAhead = errors.New("stored transaction ids are ahead of the server's")

// ErrNotMigrated means the store's tables are missing or older than this
// program: run `writer migrate`.
var ErrNotMigrated = errors.New("the store's tables are not current: run `writer migrate`")

// ErrRebaselineNotNeeded refuses to re-baseline a store whose stored
// transaction ids are behind the server's: nothing needs it, and it would
// make every reader read the whole store again and halt the relay.
var ErrRebaselineNotNeeded = errors.New("the store does not need re-baselining")

// Check verifies that the schema is at the newest migration and that the
// stored transaction ids are behind the server's (see ErrTxIDsAhead), and
// loads the store's epoch. Servers call it at start.
func (s *Store) Check(ctx context.Context) (err error) {
	defer wrap(&err, "check store")
	ms, err := migrations()
	if err != nil {
		return err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return translate(err)
	}
	if !exists {
		return fmt.Errorf("schema %q has no store: %w", s.schema, ErrNotMigrated)
	}
	done, err := appliedVersions(ctx, s.pool)
	if err != nil {
		return translate(err)
	}
	for _, m := range ms {
		if !done[m.version] {
			return fmt.Errorf("migration %s is not applied: %w", m.name, ErrNotMigrated)
		}
	}
	if stored, next, err := txIDsAhead(ctx, s.pool); err != nil {
		return translate(err)
	} else if stored >= next {
		return fmt.Errorf("%w: the events table holds transaction id %d, but this server has issued ids only below %d. "+
			"The database was probably restored from a logical dump. Run `writer migrate --rebaseline` to re-baseline the "+
			"stored ids; position cursors and relay checkpoints issued before it will be refused", ErrTxIDsAhead, stored, next)
	}
	var epoch int64
	var id [16]byte
	if err := s.pool.QueryRow(ctx, "SELECT epoch, store_id FROM store_meta").Scan(&epoch, &id); err != nil {
		return translate(err)
	}
	s.epoch.Store(epoch)
	s.id.Store(&id)
	return nil
}

// rebaseline gives every stored event this transaction's id, so that all of
// them become one batch that every new snapshot sees, in position order,
// and moves to a new epoch so that old cursors are refused.
//
// Unless force is set, it refuses a store whose ids are behind the
// server's. Readers and relays of the store that are running refuse their
// cursors of the old epoch from their next read on: each read checks the
// store's epoch.
func rebaseline(ctx context.Context, tx pgx.Tx, force bool) error {
	if _, err := tx.Exec(ctx, "LOCK TABLE events IN EXCLUSIVE MODE"); err != nil {
		return err
	}
	if stored, next, err := txIDsAhead(ctx, tx); err != nil {
		return err
	} else if stored < next && !force {
		return fmt.Errorf("%w: its transaction ids (the highest stored is %d) are behind the server's (%d), as they are unless the "+
			"database was restored from a logical dump; re-baselining would make every reader read the whole store again and "+
			"halt the relay. Use --force to re-baseline anyway", ErrRebaselineNotNeeded, stored, next)
	}
	if _, err := tx.Exec(ctx, "UPDATE events SET tx_id = pg_current_xact_id()"); err != nil {
		return fmt.Errorf("rebaseline: %w", err)
	}
	_, err := tx.Exec(ctx, "UPDATE store_meta SET epoch = epoch + 1, rebaselined_at = now()")
	return err
}

// txIDsAhead returns the highest transaction id stored (0 for none) and the
// server's next one.
func txIDsAhead(ctx context.Context, q querier) (stored, next uint64, err error) {
	var maxTx *string
	var serverNext string
	err = q.QueryRow(ctx, `SELECT (SELECT tx_id FROM events ORDER BY tx_id DESC LIMIT 1)::text,
		pg_snapshot_xmax(pg_current_snapshot())::text`).Scan(&maxTx, &serverNext)
	if err != nil {
		return 0, 0, err
	}
	if maxTx != nil {
		if stored, err = strconv.ParseUint(*maxTx, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	next, err = strconv.ParseUint(serverNext, 10, 64)
	return stored, next, err
}
