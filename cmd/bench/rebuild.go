package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata/internal/runner"
)

// rebuildEvents is how many Order events the rebuild group stores and
// publishes, and each of its rounds applies twice: steadily, then by a
// rebuild.
const rebuildEvents = 1_000_000

// rebuildOrdersPerAppend makes the fill quick: 50 orders (250 events) a
// multi-stream append.
const rebuildOrdersPerAppend = 50

// rebuildRounds bounds the rounds, which take some 30 seconds each on 2
// cores, so that the group takes a few minutes.
const rebuildRounds = 3

// benchRebuild compares `projector rebuild order_summary` over
// rebuildEvents events — the whole rebuild: the fresh tables, the replay of
// the topics, the catching up and the swap — with the steady rate at which
// one worker applies the same events to an empty read model (as the
// projector group measures it) in the same round, just before.
func benchRebuild(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	b, rl, stop, err := startProjectorBench(ctx, url, "bench_rebuild", "rbl", cfg, log)
	if err != nil {
		return err
	}
	defer stop()
	if err := b.fillOrders(ctx, rl, rebuildEvents, rebuildOrdersPerAppend); err != nil {
		return err
	}
	name := fmt.Sprintf("projector rebuild order_summary of %s Order events (events/s)", thousands(rebuildEvents))
	fmt.Fprintf(log, "  %s ...\n", name)
	p := &pair{}
	for r := range min(cfg.rounds, rebuildRounds) {
		var rebuilt float64
		steady, err := b.applyRound(ctx, rebuildEvents, func(rn *runner.Runner, schema string) error {
			start := time.Now()
			_, err := rn.Rebuild(ctx, runner.RebuildOptions{Open: func(ctx context.Context, schema string) (*pgxpool.Pool, error) {
				return readModelPool(ctx, b.url, schema, nil)
			}})
			if err != nil {
				return fmt.Errorf("rebuild: %w", err)
			}
			rebuilt = rebuildEvents / time.Since(start).Seconds()
			return checkSummary(ctx, b.store, schema, rebuildEvents/eventsPerOrder)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "    round %d: rebuild %s, steady apply %s\n", r+1, perSecond(rebuilt), perSecond(steady.rate))
		p.ours, p.base = append(p.ours, rebuilt), append(p.base, steady.rate)
	}
	t.add(ratioRow(name, p, "steady apply by one worker, the same events", 0.8))
	return nil
}
