package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/pgsnapshots"
	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/orders"
)

// The stream lengths the snapshot group compares.
const (
	longStream  = 10_000
	shortStream = 10
)

// benchSnapshots measures one command (aggregate.Handle adding an item to
// an order) through the writer's HTTP API with client.Client, as a
// service runs it, one at a time: on an order of 10,000 events with
// snapshots in PostgreSQL (pgsnapshots), on one of 10,000 without, and on
// one of 10 events, the baseline, in alternating rounds. Each command on
// the short order has a fresh order of exactly 10 events, made before its
// timing starts; the long orders grow by the commands run on them.
func benchSnapshots(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	const schema = "bench_snapshot"
	s, err := openBenchStore(ctx, url, schema, 8)
	if err != nil {
		return err
	}
	defer s.Close()
	writer, err := startWriter(ctx, url, schema, log, "--relay=false")
	if err != nil {
		return err
	}
	defer writer.stop()
	c, err := client.New(writer.addr, client.Options{})
	if err != nil {
		return err
	}
	store, err := pgsnapshots.New(ctx, s.Pool(), schema)
	if err != nil {
		return err
	}
	snapErrs := make(chan error, 1) // the first a snapshot meets
	snaps, err := aggregate.NewSnapshotter(store, "order-v1", aggregate.SnapshotOptions{OnError: func(err error) {
		select {
		case snapErrs <- err:
		default:
		}
	}})
	if err != nil {
		return err
	}
	defer snaps.Wait()

	fmt.Fprintf(log, "  filling two orders of %s events ...\n", thousands(longStream))
	for _, id := range []string{"long-snapshots", "long-plain"} {
		if err := fillOrder(ctx, c, id, longStream); err != nil {
			return err
		}
	}
	short := 0
	command := func(id string, snaps *aggregate.Snapshotter) func() error {
		return func() error {
			_, err := aggregate.Handle(ctx, c, orders.StreamID(id), orders.Order{ID: id}, orders.Evolve,
				func(o orders.Order) ([]client.Event, error) { return o.AddItem("widget-x", 1, "15.99", time.Now()) },
				aggregate.Options{Snapshots: snaps})
			return err
		}
	}
	nextShort := func() (func() error, error) {
		short++
		id := fmt.Sprintf("short-%d", short)
		return command(id, nil), fillOrder(ctx, c, id, shortStream)
	}
	same := func(f func() error) func() (func() error, error) {
		return func() (func() error, error) { return f, nil }
	}
	// A first command on the snapshotted order takes its first snapshot.
	if err := command("long-snapshots", snaps)(); err != nil {
		return err
	}
	snaps.Wait()

	name := fmt.Sprintf("command on a %s-event order, snapshots in PostgreSQL (p50 latency)", thousands(longStream))
	fmt.Fprintf(log, "  %s, beside %s events and no snapshots ...\n", name, thousands(shortStream))
	var withSnaps, without, base []float64
	var withLat, withoutLat, baseLat []time.Duration
	for range cfg.rounds {
		for _, m := range []struct {
			next    func() (func() error, error)
			medians *[]float64
			lat     *[]time.Duration
		}{
			{same(command("long-snapshots", snaps)), &withSnaps, &withLat},
			{same(command("long-plain", nil)), &without, &withoutLat},
			{nextShort, &base, &baseLat},
		} {
			lat, err := timeCommands(cfg.duration, m.next)
			if err != nil {
				return err
			}
			snaps.Wait()
			*m.medians = append(*m.medians, float64(percentile(lat, 0.5)))
			*m.lat = append(*m.lat, lat...)
		}
	}
	select {
	case err := <-snapErrs:
		return fmt.Errorf("a snapshot failed: %w", err)
	default:
	}
	st := snaps.Stats()
	if st.Used == 0 {
		return fmt.Errorf("no command started from a snapshot: %+v", st)
	}
	baseOf := fmt.Sprintf("%s (%s events)", latencies(baseLat), thousands(shortStream))
	r := latencyRatio(withSnaps, base)
	t.add(row{
		name:    name,
		ours:    fmt.Sprintf("%s, %d snapshots taken", latencies(withLat), st.Saved),
		base:    baseOf,
		ratio:   fmt.Sprintf("%.2f", r),
		target:  "<= 2.00",
		verdict: verdict(r <= 2),
	})
	t.add(row{
		name:    fmt.Sprintf("the same without snapshots (%s events read)", thousands(longStream)),
		ours:    latencies(withoutLat),
		base:    baseOf,
		ratio:   fmt.Sprintf("%.2f", latencyRatio(without, base)),
		target:  "none",
		verdict: "(for comparison)",
	})
	return nil
}

// latencyRatio is the median of the rounds' ratios of ours to base.
func latencyRatio(ours, base []float64) float64 {
	r := make([]float64, len(ours))
	for i := range ours {
		r[i] = ours[i] / base[i]
	}
	return median(r)
}

// timeCommands runs commands one after another for d of their own time,
// and returns each one's latency; next gives each command, and prepares
// what it needs outside of its time.
func timeCommands(d time.Duration, next func() (func() error, error)) ([]time.Duration, error) {
	var lat []time.Duration
	for spent := time.Duration(0); spent < d; {
		f, err := next()
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
		spent += lat[len(lat)-1]
	}
	return lat, nil
}

// fillOrder creates the order id with n events: its creation and n-1
// items added, in appends of client.MaxAppendEvents.
func fillOrder(ctx context.Context, c *client.Client, id string, n int) error {
	o := orders.Order{ID: id}
	events, err := o.Create("customer-1", time.Now())
	if err != nil {
		return err
	}
	o.Created = true
	item, err := o.AddItem("widget-x", 1, "15.99", time.Now())
	if err != nil {
		return err
	}
	for len(events) < n {
		events = append(events, item[0])
	}
	for len(events) > 0 {
		k := min(len(events), client.MaxAppendEvents)
		if _, err := c.Append(ctx, orders.StreamID(id), client.Any, events[:k]); err != nil {
			return fmt.Errorf("fill order %s: %w", id, err)
		}
		events = events[k:]
	}
	return nil
}
