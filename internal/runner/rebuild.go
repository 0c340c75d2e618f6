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
)

// Rebuilding, blue/green: the projection is replayed from the start of its
// topics into fresh tables in a schema of their own (BuildSchema), as a new
// generation with its own offsets and version guard, while the serving
// generation keeps serving and its workers keep it current. When the
// replay has reached the end offsets the topics had when it began, it
// catches up with the serving generation, which went on meanwhile. Then
// one transaction holds the serving generation's workers back, applies to
// the new generation what they applied since, drops the serving tables,
// moves the new ones into the read-model schema and makes the new
// generation the serving one: readers see the read model jump ahead, never
// back. The workers' next claims then fail (their generation is gone), and
// they go on from the new generation's offsets. An interrupted rebuild
// resumes where it stopped, unless restarted.

// RebuildOptions configures a rebuild.
type RebuildOptions struct {
	// Restart discards an interrupted rebuild instead of resuming it.
	Restart bool
	// Open returns a pool whose search_path is schema.
	Open func(ctx context.Context, schema string) (*pgxpool.Pool, error)
	// Progress is called as the replay advances: done of total records
	// (total is what the topics held when the rebuild began).
	Progress func(done, total int64)
	// Started, when set, is called once the rebuild holds its lock and
	// has registered its generation (resumed: an interrupted one).
	Started func(generation int64, resumed bool)
}

// ErrRebuildRunning: a rebuild of the projection is already running.
var ErrRebuildRunning = errors.New("a rebuild is already running")

// BuildSchema is the schema a rebuild of projection name builds in.
func BuildSchema(schema, name string) string { return schema + "_build_" + name }

// Rebuild replays the projection into fresh tables and swaps them in. It
// returns the new generation. Only one rebuild of a projection runs at a
// time; another fails at once.
func (r *Runner) Rebuild(ctx context.Context, opts RebuildOptions) (int64, error) {
	if err := r.book.ensure(ctx, r.db); err != nil {
		return 0, err
	}
	build := BuildSchema(r.opts.Schema, r.p.Name)
	if len(build) > 63 {
		return 0, fmt.Errorf("the build schema name %q is longer than PostgreSQL's 63 characters: use a shorter projection name", build)
	}
	lock, err := r.db.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer lock.Release()
	var got bool
	key := "strata.rebuild." + r.opts.Schema + "." + r.p.Name
	if err := lock.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", key).Scan(&got); err != nil {
		return 0, err
	}
	if !got {
		return 0, fmt.Errorf("%w: %s is being rebuilt by another process or request", ErrRebuildRunning, r.p.Name)
	}
	defer lock.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", key)

	gen, resumed, err := r.startBuild(ctx, build, opts.Restart)
	if err != nil {
		return 0, err
	}
	r.log.Info("rebuilding", "generation", gen, "schema", build, "resumed", resumed)
	if opts.Started != nil {
		opts.Started(gen, resumed)
	}
	pool, err := opts.Open(ctx, build)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return runSetup(ctx, tx, build, r.p) })
	if err != nil {
		return 0, err
	}
	t := target{projection: r.p.Name, generation: gen, build: true}
	if err := r.replay(ctx, pool, t, opts.Progress); err != nil {
		return 0, err
	}
	if err := r.swap(ctx, pool, build, t); err != nil {
		return 0, err
	}
	r.log.Info("rebuilt and swapped in", "generation", gen)
	// The old generations' bookkeeping is dead weight now; parked events
	// stay, as history.
	for _, table := range []string{"projection_offsets", "projection_streams"} {
		if _, err := r.db.Exec(ctx, "DELETE FROM "+r.book.schema+"."+table+" WHERE projection = $1 AND generation < $2",
			r.p.Name, gen); err != nil {
			r.log.Warn("could not delete the old generations' bookkeeping", "table", table, "error", err)
		}
	}
	return gen, nil
}

// startBuild registers a new build generation with a fresh schema, or
// finds the interrupted one.
func (r *Runner) startBuild(ctx context.Context, build string, restart bool) (gen int64, resumed bool, err error) {
	err = pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+r.book.schema+".projections (name) VALUES ($1) ON CONFLICT DO NOTHING", r.p.Name); err != nil {
			return err
		}
		var current int64
		var pending *int64
		if err := tx.QueryRow(ctx, "SELECT generation, build_generation FROM "+r.book.schema+".projections WHERE name = $1 FOR UPDATE",
			r.p.Name).Scan(&current, &pending); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", build).Scan(&exists); err != nil {
			return err
		}
		if pending != nil && exists && !restart {
			gen, resumed = *pending, true
			return nil
		}
		gen = max(current, deref(pending)) + 1
		quoted := pgx.Identifier{build}.Sanitize()
		for _, q := range []string{"DROP SCHEMA IF EXISTS " + quoted + " CASCADE", "CREATE SCHEMA " + quoted} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		for _, table := range []string{"projection_offsets", "projection_streams", "parked_events"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+r.book.schema+"."+table+" WHERE projection = $1 AND generation >= $2", r.p.Name, gen); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE `+r.book.schema+`.projections SET build_generation = $2, build_started_at = now(),
			build_done = 0, build_total = NULL, updated_at = now() WHERE name = $1`, r.p.Name, gen)
		return err
	})
	return gen, resumed, err
}

// catchUpRounds bounds the rounds of catching up with the serving
// generation before the swap, which then applies what is left while it
// holds the serving generation's workers back.
const catchUpRounds = 3

// replay applies the topics to t, from its stored offsets, up to the end
// offsets they have now, reporting progress; then it catches up with the
// serving generation.
func (r *Runner) replay(ctx context.Context, pool *pgxpool.Pool, t target, progress func(done, total int64)) error {
	ends, err := r.consumers.EndOffsets(ctx, r.Topics())
	if err != nil {
		return err
	}
	var lastReport time.Time
	report := func(n, total int64, finished bool) {
		if progress != nil {
			progress(n, total)
		}
		if finished || time.Since(lastReport) > 2*time.Second {
			r.db.Exec(ctx, "UPDATE "+r.book.schema+".projections SET build_done = $2, build_total = $3 WHERE name = $1",
				r.p.Name, n, total)
			lastReport = time.Now()
		}
	}
	if err := r.applyUpTo(ctx, pool, t, ends, report); err != nil {
		return err
	}
	for range catchUpRounds {
		row, err := r.book.load(ctx, r.db, r.p.Name)
		if err != nil {
			return err
		}
		behind, err := r.behind(ctx, r.db, t, row.Generation)
		if err != nil || len(behind) == 0 {
			return err
		}
		if err := r.applyUpTo(ctx, pool, t, behind, nil); err != nil {
			return err
		}
	}
	return nil
}

// applyUpTo applies the topics to t, from its stored offsets, until each
// partition of to has reached its offset there. Other partitions are
// left as they are. report, when set, is called as it advances: done of
// total records.
func (r *Runner) applyUpTo(ctx context.Context, pool *pgxpool.Pool, t target, to map[string]map[int32]int64,
	report func(done, total int64, finished bool)) error {
	topics := r.Topics()
	from, err := r.book.offsets(ctx, pool, t, topics)
	if err != nil {
		return err
	}
	a := r.newApplier(pool, t)
	var total int64
	for topic, ps := range to {
		for p, end := range ps {
			next, ok := from[topic][p]
			if !ok {
				next = -1
			}
			a.parts[partitionKey{topic, p}] = &partitionState{next: next, versions: map[string]int64{}}
			total += max(0, end-max(next, 0))
		}
	}
	done := func() (n int64, finished bool) {
		finished = true
		for topic, ps := range to {
			for p, end := range ps {
				st := a.parts[partitionKey{topic, p}]
				start := max(from[topic][p], 0)
				n += max(0, min(end, max(st.next, 0))-start)
				if max(st.next, 0) < end { // -1: nothing stored, and nothing to apply in an empty partition
					finished = false
				}
			}
		}
		return n, finished
	}
	n, finished := done()
	if report != nil {
		report(n, total, finished)
	}
	if finished {
		return nil
	}
	c, err := r.consumers.Partitions(ctx, topics, from)
	if err != nil {
		return err
	}
	defer c.Close()
	err = a.consume(ctx, c, func() bool {
		n, finished = done()
		if report != nil {
			report(n, total, finished)
		}
		return finished
	})
	if errors.Is(err, errConflict) {
		return fmt.Errorf("the rebuild's offsets moved under it (another rebuild of %s?): %w", r.p.Name, err)
	}
	return err
}

// behind returns the next offsets of the partitions where generation
// serving has gone further than t.
func (r *Runner) behind(ctx context.Context, q querier, t target, serving int64) (map[string]map[int32]int64, error) {
	topics := r.Topics()
	live, err := r.book.offsets(ctx, q, target{projection: t.projection, generation: serving}, topics)
	if err != nil {
		return nil, err
	}
	built, err := r.book.offsets(ctx, q, t, topics)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	for topic, ps := range live {
		for p, next := range ps {
			if b, ok := built[topic][p]; !ok || b < next {
				if out[topic] == nil {
					out[topic] = map[int32]int64{}
				}
				out[topic][p] = next
			}
		}
	}
	return out, nil
}

// swap makes generation t, built in schema build through pool, the
// serving one.
func (r *Runner) swap(ctx context.Context, pool *pgxpool.Pool, build string, t target) error {
	live, gen := r.book.name, t.generation
	return pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		// This lock holds back the serving generation's claims (FOR
		// SHARE) until the swap commits, and then they fail; the build's
		// (FOR KEY SHARE) go on, for the catching up below.
		var serving int64
		var pending *int64
		var old []string
		if err := tx.QueryRow(ctx, "SELECT generation, build_generation, tables FROM "+r.book.schema+".projections WHERE name = $1 FOR NO KEY UPDATE",
			r.p.Name).Scan(&serving, &pending, &old); err != nil {
			return err
		}
		if pending == nil || *pending != gen {
			return fmt.Errorf("the rebuild of %s was restarted by another process: generation %d is no longer being built", r.p.Name, gen)
		}
		// Apply what the serving generation applied and the build has
		// not, or readers would see the read model go back.
		behind, err := r.behind(ctx, tx, t, serving)
		if err != nil {
			return err
		}
		if len(behind) > 0 {
			r.log.Info("catching up with the serving generation before the swap", "partitions", behind)
			if err := r.applyUpTo(ctx, pool, t, behind, nil); err != nil {
				return err
			}
		}
		built, err := tablesIn(ctx, tx, build)
		if err != nil {
			return err
		}
		existing, err := tablesIn(ctx, tx, live)
		if err != nil {
			return err
		}
		for _, table := range built {
			if slices.Contains(existing, table) && !slices.Contains(old, table) {
				return fmt.Errorf("cannot swap in %s.%s: a table of that name exists in %s and is not projection %s's", build, table, live, r.p.Name)
			}
		}
		var drop []string
		for _, table := range old {
			if slices.Contains(existing, table) {
				drop = append(drop, pgx.Identifier{live, table}.Sanitize())
			}
		}
		if len(drop) > 0 {
			if _, err := tx.Exec(ctx, "DROP TABLE "+strings.Join(drop, ", ")); err != nil {
				return fmt.Errorf("drop the serving tables of %s: %w", r.p.Name, err)
			}
		}
		for _, table := range built {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+pgx.Identifier{build, table}.Sanitize()+" SET SCHEMA "+r.book.schema); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{build}.Sanitize()+" CASCADE"); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE `+r.book.schema+`.projections SET generation = $2, tables = $3, state = 'running',
			halted_error = NULL, halted_at = NULL, halted_event = NULL, build_generation = NULL, build_started_at = NULL,
			build_done = NULL, build_total = NULL, updated_at = now() WHERE name = $1`, r.p.Name, gen, built)
		return err
	})
}
