package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/projection"
)

// The runner's bookkeeping lives in the read-model schema, beside the read
// models, so that a read model and its offsets change in one transaction:
//
//   - projections: one row per projection: the generation that serves
//     (a rebuild makes the next one), its state (running or halted, and
//     why), the tables its Setup created, and a rebuild in progress.
//   - projection_offsets: per generation and partition, the next offset
//     to apply, and how many events were applied.
//   - projection_streams: per generation and stream, the last version
//     applied: the version guard.
//   - parked_events: the dead letters of the park policy.
const bookDDL = `
CREATE TABLE IF NOT EXISTS %[1]s.projections (
    name             text PRIMARY KEY,
    generation       bigint NOT NULL DEFAULT 1,
    state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'halted')),
    tables           text[] NOT NULL DEFAULT '{}',
    halted_error     text,
    halted_at        timestamptz,
    halted_event     jsonb,
    build_generation bigint,
    build_started_at timestamptz,
    build_done       bigint,
    build_total      bigint,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS %[1]s.projection_offsets (
    projection  text   NOT NULL,
    generation  bigint NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    applied     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, generation, topic, partition)
);
CREATE TABLE IF NOT EXISTS %[1]s.projection_streams (
    projection text   NOT NULL,
    generation bigint NOT NULL,
    stream_id  text   NOT NULL,
    version    bigint NOT NULL,
    PRIMARY KEY (projection, generation, stream_id)
);
CREATE TABLE IF NOT EXISTS %[1]s.parked_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection  text   NOT NULL,
    generation  bigint NOT NULL,
    topic       text   NOT NULL,
    partition   int    NOT NULL,
    "offset"    bigint NOT NULL,
    event_id    text,
    stream_id   text,
    version     bigint,
    type        text,
    error       text   NOT NULL,
    attempts    int    NOT NULL,
    value       bytea,
    parked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS parked_events_projection ON %[1]s.parked_events (projection, generation);
`

// book is the bookkeeping of one read-model schema.
type book struct {
	schema string // quoted
	name   string // as given
}

func newBook(schema string) book {
	return book{schema: pgx.Identifier{schema}.Sanitize(), name: schema}
}

// target is what a runner writes: the serving generation of a projection
// (live) or the one a rebuild is making.
type target struct {
	projection string
	generation int64
	build      bool
}

// ensure creates the schema and the bookkeeping tables, if missing.
func (b book) ensure(ctx context.Context, db *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strata.projector.' || $1))", b.name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+b.schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(bookDDL, b.schema))
		return err
	})
}

// setup runs p's Setup in the read-model schema, registering p on its
// first run, and records the tables it creates as p's. It returns p's row.
func (b book) setup(ctx context.Context, db *pgxpool.Pool, p *projection.Projection) (row projectionRow, err error) {
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// One setup at a time in a schema: the tables a Setup creates
		// are told apart from the others' by comparing before and after.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strata.projector.' || $1))", b.name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+b.schema+".projections (name) VALUES ($1) ON CONFLICT DO NOTHING", p.Name); err != nil {
			return err
		}
		// Lock the projection's row before the DDL, not after it (the
		// UPDATE below would): a worker's batch locks the row first (its
		// claim) and the tables then, so the other order deadlocks with
		// it — DDL such as CREATE INDEX IF NOT EXISTS locks a table even
		// when it has nothing to do.
		if _, err := tx.Exec(ctx, "SELECT FROM "+b.schema+".projections WHERE name = $1 FOR NO KEY UPDATE", p.Name); err != nil {
			return err
		}
		before, err := tablesIn(ctx, tx, b.name)
		if err != nil {
			return err
		}
		if err := runSetup(ctx, tx, b.name, p); err != nil {
			return err
		}
		after, err := tablesIn(ctx, tx, b.name)
		if err != nil {
			return err
		}
		var created []string
		for _, t := range after {
			if !slices.Contains(before, t) {
				created = append(created, t)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE `+b.schema+`.projections
			SET tables = ARRAY(SELECT DISTINCT unnest(tables || $2::text[]) ORDER BY 1), updated_at = now()
			WHERE name = $1`, p.Name, created); err != nil {
			return err
		}
		row, err = b.load(ctx, tx, p.Name)
		return err
	})
	return row, err
}

// runSetup runs p's Setup with search_path set to schema, for this
// transaction only.
func runSetup(ctx context.Context, tx pgx.Tx, schema string, p *projection.Projection) error {
	if strings.TrimSpace(p.Setup) == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, p.Setup); err != nil {
		return fmt.Errorf("setup of projection %s (%s): %w", p.Name, sourceOf(p), err)
	}
	return nil
}

func sourceOf(p *projection.Projection) string {
	if p.Source != "" {
		return p.Source
	}
	return "Go"
}

func tablesIn(ctx context.Context, q pgx.Tx, schema string) ([]string, error) {
	rows, err := q.Query(ctx, "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// projectionRow is a projection's row in the projections table.
type projectionRow struct {
	Name            string
	Generation      int64
	State           string
	Tables          []string
	HaltedError     *string
	HaltedAt        *time.Time
	HaltedEvent     *Halt
	BuildGeneration *int64
	BuildStartedAt  *time.Time
	BuildDone       *int64
	BuildTotal      *int64
}

const projectionColumns = `name, generation, state, tables, halted_error, halted_at, halted_event,
	build_generation, build_started_at, build_done, build_total`

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// errUnknownProjection means no projection of that name ever ran here.
var errUnknownProjection = errors.New("unknown projection")

func (b book) load(ctx context.Context, q querier, name string) (projectionRow, error) {
	rows, err := q.Query(ctx, "SELECT "+projectionColumns+" FROM "+b.schema+".projections WHERE name = $1", name)
	if err != nil {
		return projectionRow{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[projectionRow])
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("%w %q: it has not run in schema %s", errUnknownProjection, name, b.name)
	}
	return r, err
}

// exists reports whether the bookkeeping tables exist: they do once a
// projection has been set up.
func (b book) exists(ctx context.Context, q querier) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", b.schema+".parked_events").Scan(&ok)
	return ok, err
}

func (b book) loadAll(ctx context.Context, q querier) ([]projectionRow, error) {
	rows, err := q.Query(ctx, "SELECT "+projectionColumns+" FROM "+b.schema+".projections ORDER BY name")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[projectionRow])
}

// offsets returns the stored next offsets of t's partitions of topics.
func (b book) offsets(ctx context.Context, q querier, t target, topics []string) (map[string]map[int32]int64, error) {
	rows, err := q.Query(ctx, `SELECT topic, partition, next_offset FROM `+b.schema+`.projection_offsets
		WHERE projection = $1 AND generation = $2 AND topic = ANY($3)`, t.projection, t.generation, topics)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	var topic string
	var partition int32
	var next int64
	_, err = pgx.ForEachRow(rows, []any{&topic, &partition, &next}, func() error {
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][partition] = next
		return nil
	})
	return out, err
}

// claimSQL moves partitions' stored offsets, and stores streams' last
// applied versions, in one statement (one round trip, one plan, one lock
// of the projection's row).
//
// The claims: partition ($3, $4)'s stored offset moves from $5 (-1: none
// stored yet) to $6, adding $7 to its applied count — only if it is still
// at $5 and the target generation still is what the runner thinks. The
// first column of the row whose stream is NULL counts the claims made:
// fewer than asked means a conflict: another worker moved an offset, a
// rebuild was swapped in, or the projection halted.
//
// It locks the projection's row, which serializes it with what changes
// the row. A live claim locks it FOR SHARE: a halt or a swap waits for
// the batch, and the batch for them, and then fails. A build claim locks
// it FOR KEY SHARE: a restart of the rebuild (FOR UPDATE) excludes it,
// but not the lock a swap holds (FOR NO KEY UPDATE) while it catches the
// build up with the serving generation, whose own claims that lock holds
// back (see Runner.swap). Every change below reads the locked row first,
// so the lock comes before them.
//
// The versions: $10 are stored as the last applied of streams $8, and the
// other rows return those whose stored version (0 for none) was not $9,
// with it. Both parts see the versions as they were before the statement.
// One index probe per stream, by a scalar subquery: "stream_id = ANY($8)"
// or a join, even a lateral one, would read like one, but a generic plan
// (which pgx's prepared statements get after five runs) may scan the
// projection's every stream and match them to the batch's, making each
// batch as slow as the read model is large.
const claimSQL = `WITH p AS (
	SELECT 1 FROM %[1]s.projections WHERE name = $1 AND %[2]s %[3]s
),
c AS (
	SELECT * FROM unnest($3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[])
		AS c(topic, partition, from_offset, next_offset, applied)
),
moved AS (
	UPDATE %[1]s.projection_offsets AS o
	SET next_offset = c.next_offset, applied = o.applied + c.applied, updated_at = now()
	FROM c, p
	WHERE o.projection = $1 AND o.generation = $2 AND o.topic = c.topic AND o.partition = c.partition
		AND o.next_offset = c.from_offset
	RETURNING 1
),
added AS (
	INSERT INTO %[1]s.projection_offsets (projection, generation, topic, partition, next_offset, applied)
	SELECT $1, $2, c.topic, c.partition, c.next_offset, c.applied FROM c, p WHERE c.from_offset = -1
	ON CONFLICT DO NOTHING
	RETURNING 1
),
u AS (
	SELECT * FROM unnest($8::text[], $9::bigint[], $10::bigint[]) AS u(stream_id, expected, version)
),
stored AS (
	SELECT u.stream_id, u.expected, coalesce((SELECT version FROM %[1]s.projection_streams
		WHERE projection = $1 AND generation = $2 AND stream_id = u.stream_id), 0) AS version FROM u
),
saved AS (
	INSERT INTO %[1]s.projection_streams (projection, generation, stream_id, version)
	SELECT $1, $2, u.stream_id, u.version FROM u, p
	ON CONFLICT (projection, generation, stream_id) DO UPDATE SET version = excluded.version
)
SELECT NULL, (SELECT count(*) FROM moved) + (SELECT count(*) FROM added)
UNION ALL
SELECT stream_id, version FROM stored WHERE version <> expected`

func (b book) claimSQL(t target) string {
	cond, lock := "generation = $2 AND state = 'running'", "FOR SHARE"
	if t.build {
		cond, lock = "build_generation = $2", "FOR KEY SHARE"
	}
	return fmt.Sprintf(claimSQL, b.schema, cond, lock)
}

// errConflict means a batch's claim on its partition failed: see claimSQL.
var errConflict = errors.New("the partition's stored offset or the projection's generation changed")

// claim is the move of one partition's stored offset, see claimSQL.
type claim struct {
	topic     string
	partition int32
	from, to  int64
	applied   int64
}

// claim runs claimSQL in tx, for one partition and no stream.
func (b book) claim(ctx context.Context, tx pgx.Tx, t target, topic string, partition int32, from, to, applied int64) error {
	_, err := b.claimAll(ctx, tx, t, []claim{{topic, partition, from, to, applied}}, nil, nil, nil)
	return err
}

// claimAll makes the claims, and stores versions as the last applied of
// streams if they are at expected, in one statement (claimSQL). It
// returns errConflict if a claim fails, and the versions stored of the
// streams that are not at expected — then the transaction must be rolled
// back.
func (b book) claimAll(ctx context.Context, tx pgx.Tx, t target, claims []claim, streams []string, expected, versions []int64) (stale map[string]int64, err error) {
	n := len(claims)
	topics, partitions := make([]string, n), make([]int32, n)
	from, to, applied := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, c := range claims {
		topics[i], partitions[i], from[i], to[i], applied[i] = c.topic, c.partition, c.from, c.to, c.applied
	}
	if streams == nil {
		streams, expected, versions = []string{}, []int64{}, []int64{}
	}
	rows, err := tx.Query(ctx, b.claimSQL(t), t.projection, t.generation, topics, partitions, from, to, applied,
		streams, expected, versions)
	if err != nil {
		return nil, err
	}
	var stream *string
	var v, claimed int64
	_, err = pgx.ForEachRow(rows, []any{&stream, &v}, func() error {
		if stream == nil {
			claimed = v
			return nil
		}
		if stale == nil {
			stale = map[string]int64{}
		}
		stale[*stream] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if claimed != int64(n) {
		return nil, errConflict
	}
	return stale, nil
}

// saveVersions stores the last applied versions of streams.
func (b book) saveVersions(ctx context.Context, tx pgx.Tx, t target, streams []string, versions []int64) error {
	if len(streams) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, saveVersionsSQL(b.schema), t.projection, t.generation, streams, versions)
	return err
}

func saveVersionsSQL(schema string) string {
	return `INSERT INTO ` + schema + `.projection_streams (projection, generation, stream_id, version)
		SELECT $1, $2, s, v FROM unnest($3::text[], $4::bigint[]) AS u(s, v)
		ON CONFLICT (projection, generation, stream_id) DO UPDATE SET version = excluded.version`
}

// park records a poison record in the dead-letter table.
func (b book) park(ctx context.Context, tx pgx.Tx, t target, r Record, cause error, attempts int) error {
	var eventID, stream, typ *string
	var version *int64
	if r.Err == nil {
		id, s, ty := r.Event.ID.String(), r.Event.StreamID.String(), r.Event.Type
		eventID, stream, typ, version = &id, &s, &ty, &r.Event.Version
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+b.schema+`.parked_events
		(projection, generation, topic, partition, "offset", event_id, stream_id, version, type, error, attempts, value)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		t.projection, t.generation, r.Topic, r.Partition, r.Offset, eventID, stream, version, typ, cause.Error(), attempts, r.Value)
	return err
}

// halt marks the live generation of a projection halted by h.
func (b book) halt(ctx context.Context, db *pgxpool.Pool, t target, h Halt) error {
	_, err := db.Exec(ctx, `UPDATE `+b.schema+`.projections
		SET state = 'halted', halted_error = $3, halted_at = $4, halted_event = $5, updated_at = now()
		WHERE name = $1 AND generation = $2`, t.projection, t.generation, h.Error, h.At, h)
	return err
}

// resume clears a projection's halt, and accepts the gap a halt on one
// names (see Monitor.Resume). It returns the halt cleared, if any.
func (b book) resume(ctx context.Context, db *pgxpool.Pool, name string) (*Halt, error) {
	if set, err := b.exists(ctx, db); !set || err != nil {
		return nil, err
	}
	var h *Halt
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var generation int64
		err := tx.QueryRow(ctx, `SELECT generation, coalesce(halted_event, '{}') FROM `+b.schema+`.projections
			WHERE name = $1 AND state = 'halted' FOR UPDATE`, name).Scan(&generation, &h)
		if errors.Is(err, pgx.ErrNoRows) {
			h = nil
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE `+b.schema+`.projections
			SET state = 'running', halted_error = NULL, halted_at = NULL, halted_event = NULL, updated_at = now()
			WHERE name = $1`, name)
		if err != nil || h.GapAfter == nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE `+b.schema+`.projection_streams SET version = $4
			WHERE projection = $1 AND generation = $2 AND stream_id = $3 AND version = $5`,
			name, generation, h.StreamID, h.Version-1, *h.GapAfter)
		return err
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}
