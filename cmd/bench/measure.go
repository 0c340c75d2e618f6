package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// op is one unit of work of one worker; it returns how many items it did
// (events appended, reads made).
type op func(ctx context.Context, worker int) (int, error)

// throughput runs op on workers goroutines for d and returns items per
// second and the per-op latencies.
func throughput(ctx context.Context, workers int, d time.Duration, f op) (float64, []time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var items atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := f(ctx, w)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t0))
				items.Add(int64(n))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(items.Load()) / time.Since(start).Seconds(), lat, firstErr
}

// paced runs f on workers goroutines, each at its turn, so that together
// they make rate calls per second for d, as steady traffic would; it
// returns the first error, which stops them all.
func paced(ctx context.Context, rate, workers int, d time.Duration, f func(ctx context.Context, worker int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	deadline := time.Now().Add(d)
	interval := time.Second * time.Duration(workers) / time.Duration(rate)
	for w := range workers {
		g.Go(func() error {
			next := time.Now().Add(time.Duration(w) * interval / time.Duration(workers))
			for ; next.Before(deadline) && gctx.Err() == nil; next = next.Add(interval) {
				time.Sleep(time.Until(next))
				if err := f(gctx, w); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// pair is a comparison measured in alternating rounds: ours, baseline,
// ours, baseline ... The ratio is the median of the per-round ratios, so a
// machine that speeds up or slows down during the run affects both sides.
type pair struct {
	ours, base []float64
	oursLat    []time.Duration
}

func (p *pair) ratio() float64 {
	r := make([]float64, len(p.ours))
	for i := range p.ours {
		r[i] = p.ours[i] / p.base[i]
	}
	return median(r)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// compare measures ours and base in rounds of d each.
func compare(ctx context.Context, rounds, workers int, d time.Duration, ours, base op) (*pair, error) {
	p := &pair{}
	for r := 0; r < rounds; r++ {
		o, lat, err := throughput(ctx, workers, d, ours)
		if err != nil {
			return nil, fmt.Errorf("ours: %w", err)
		}
		b, _, err := throughput(ctx, workers, d, base)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		p.ours, p.base = append(p.ours, o), append(p.base, b)
		p.oursLat = append(p.oursLat, lat...)
	}
	return p, nil
}

// row is one line of the result table.
type row struct {
	name, ours, base, ratio, target, verdict string
}

type table struct {
	rows []row
}

func (t *table) add(r row) { t.rows = append(t.rows, r) }

func (t *table) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tstrata\tbaseline\tratio\ttarget\t")
	fmt.Fprintln(tw, "--------\t------\t--------\t-----\t------\t")
	for _, r := range t.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t\n", r.name, r.ours, r.base, r.ratio, r.target, r.verdict)
	}
	tw.Flush()
}

// ratioRow is the row of a throughput pair whose target is a least
// ratio of ours to the baseline, which base says what it is.
func ratioRow(name string, p *pair, base string, least float64) row {
	r := p.ratio()
	return row{
		name:    name,
		ours:    perSecond(median(p.ours)),
		base:    perSecond(median(p.base)) + " (" + base + ")",
		ratio:   fmt.Sprintf("%.2f", r),
		target:  fmt.Sprintf(">= %.2f", least),
		verdict: verdict(r >= least),
	}
}

// latencyRow is the row of latencies, ours beside base's, whose target is
// a most p99 of ours; oursOf and baseOf say what each measured.
func latencyRow(name string, ours []time.Duration, oursOf string, base []time.Duration, baseOf string, most time.Duration) row {
	p99, base99 := percentile(ours, 0.99), percentile(base, 0.99)
	return row{
		name:    name,
		ours:    latencies(ours) + " (" + oursOf + ")",
		base:    latencies(base) + " (" + baseOf + ")",
		ratio:   fmt.Sprintf("%.2f", float64(p99)/float64(base99)),
		target:  fmt.Sprintf("p99 <= %d ms", most.Milliseconds()),
		verdict: verdict(p99 <= most),
	}
}

// latencies gives the p50 and p99 of lat.
func latencies(lat []time.Duration) string {
	return fmt.Sprintf("p50 %s p99 %s", ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func perSecond(x float64) string { return fmt.Sprintf("%s/s", thousands(x)) }

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// counterValue reads a counter's value from reg.
func counterValue(reg *prometheus.Registry, name string) (float64, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() == name {
			var v float64
			for _, m := range f.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v, nil
		}
	}
	return 0, nil
}

// histogramSum reads the sum of a histogram's observations from reg.
func histogramSum(reg *prometheus.Registry, name string) (float64, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	var v float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				v += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return v, nil
}
