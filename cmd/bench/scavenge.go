package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/postgres"
)

// scavengeBacklog is how many events the scavenger has to remove while it
// is measured: enough that it never runs out during the rounds.
const scavengeBacklog = 500_000

// benchScavenge measures appends while the scavenger removes a backlog
// of events that a category's retention hides, beside the same appends
// with the scavenger stopped, in alternating rounds on one store.
func benchScavenge(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_scavenge", 64)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := fill(ctx, s, scavengeBacklog, log); err != nil {
		return err
	}
	one := int64(1)
	if err := s.SetCategoryRetention(ctx, "Fill", eventstore.Retention{MaxCount: &one}); err != nil {
		return err
	}
	head, err := s.Head(ctx, "")
	if err != nil {
		return err
	}
	// As the relay reports once it has published everything filled.
	if err := s.SaveRelayReport(ctx, eventstore.RelayReport{Instance: "bench", ActiveSince: time.Now(),
		Checkpoint: eventstore.RelayCheckpoint{Cursor: head}}); err != nil {
		return err
	}
	const workers = 64
	name := fmt.Sprintf("append 1 event, concurrency %d, while the scavenger removes (events/s)", workers)
	fmt.Fprintf(log, "  %s ...\n", name)
	ours, base := appendOp(s, newStreams("scavenged", workers), 1), appendOp(s, newStreams("quiet", workers), 1)
	p := &pair{}
	before := scavengedCount(ctx, s)
	for range cfg.rounds {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.RunScavenger(sctx, postgres.ScavengerOptions{Interval: 50 * time.Millisecond})
		}()
		o, lat, err := throughput(ctx, workers, cfg.duration, ours)
		stop()
		<-done
		if err != nil {
			return fmt.Errorf("ours: %w", err)
		}
		b, _, err := throughput(ctx, workers, cfg.duration, base)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		p.ours, p.base, p.oursLat = append(p.ours, o), append(p.base, b), append(p.oursLat, lat...)
	}
	removed := scavengedCount(ctx, s) - before
	r := ratioRow(name, p, "scavenger stopped", 0.9)
	r.ours += fmt.Sprintf(", %s removed in %s", thousands(float64(removed)), time.Duration(cfg.rounds)*cfg.duration)
	if removed >= scavengeBacklog-scavengeBacklog/100-1000 {
		r.ours += " (the backlog ran out)"
	}
	t.add(r)
	return nil
}

func scavengedCount(ctx context.Context, s *postgres.Store) int64 {
	var n int64
	s.Pool().QueryRow(ctx, "SELECT count(*) FROM scavenged").Scan(&n)
	return n
}
