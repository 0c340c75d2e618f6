package projector

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/readapi"
	"github.com/strata-events/strata/internal/runner"
)

// operator carries out the read API's admin actions (readapi.Operator)
// for the projections of a running projector. Rebuilds it starts run on
// the process's context, not the request's: they end when the process
// does, and resume at the next start of one.
type operator struct {
	*runner.Monitor
	s   *system
	ctx context.Context // the process's

	mu       sync.Mutex
	rebuilds map[string]readapi.RebuildRun // the last started, by projection
}

func newOperator(ctx context.Context, s *system) *operator {
	return &operator{Monitor: s.monitor, s: s, ctx: ctx, rebuilds: map[string]readapi.RebuildRun{}}
}

func (o *operator) Known(name string) bool { return o.s.runnerOf(name) != nil }

func (o *operator) LastRebuild(name string) (readapi.RebuildRun, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	run, ok := o.rebuilds[name]
	return run, ok
}

// StartRebuild starts a rebuild of name and answers once it has taken
// the rebuild's lock and registered its generation, or failed to.
func (o *operator) StartRebuild(ctx context.Context, name string, restart bool) (readapi.RebuildRun, error) {
	r := o.s.runnerOf(name)
	started := make(chan readapi.RebuildRun, 1)
	failed := make(chan error, 1)
	go func() {
		var run readapi.RebuildRun
		gen, err := r.Rebuild(o.ctx, runner.RebuildOptions{
			Restart: restart,
			Open: func(ctx context.Context, schema string) (*pgxpool.Pool, error) {
				return openPool(ctx, o.s.cfg.ReadModelURL(), schema)
			},
			Started: func(gen int64, resumed bool) {
				run = readapi.RebuildRun{Projection: name, Generation: gen, Resumed: resumed, State: "running", StartedAt: time.Now().UTC()}
				o.record(run)
				started <- run
			},
		})
		if run.State == "" { // it never began
			failed <- err
			return
		}
		run.FinishedAt, run.State = time.Now().UTC(), "done"
		if err != nil {
			run.State, run.Error = "failed", err.Error()
			o.s.log.Error("rebuild failed", "projection", name, "generation", run.Generation, "error", err)
		} else {
			o.s.log.Info("rebuilt", "projection", name, "generation", gen)
		}
		o.record(run)
	}()
	select {
	case run := <-started:
		return run, nil
	case err := <-failed:
		return readapi.RebuildRun{}, err
	case <-ctx.Done():
		return readapi.RebuildRun{}, ctx.Err()
	}
}

func (o *operator) record(run readapi.RebuildRun) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rebuilds[run.Projection] = run
}
