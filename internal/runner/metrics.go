package runner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/projection"
)

// metrics are a projection's Prometheus metrics. Every runner of a process
// shares the collectors, labelled by projection.
type metrics struct {
	name      string
	events    *prometheus.CounterVec
	batches   prometheus.Counter
	gaps      prometheus.Counter
	conflicts prometheus.Counter
	retries   *prometheus.CounterVec
	halted    prometheus.Gauge
	lag       *prometheus.GaugeVec
	commit    prometheus.Observer
	delay     prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, name string) *metrics {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_projection_events_total",
		Help: "Events handled, by outcome: applied, duplicate (dropped by the version guard) or parked.",
	}, []string{"projection", "outcome"})
	batches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_projection_batches_total", Help: "Batches committed.",
	}, []string{"projection"})
	gaps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_projection_gaps_total", Help: "Events that followed a gap in their stream's versions; each halts the projection.",
	}, []string{"projection"})
	conflicts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_projection_conflicts_total",
		Help: "Batches refused because another worker or a rebuild had moved the partition's offset.",
	}, []string{"projection"})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_projection_retries_total",
		Help: "Retried batches, by kind: transient (database or network) or failure (the batch itself).",
	}, []string{"projection", "kind"})
	halted := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_projection_halted", Help: "1 while the projection is halted by a poison event.",
	}, []string{"projection"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strata_projection_lag_records",
		Help: "Records between a partition's last stable offset and the next one to apply, for partitions this worker owns.",
	}, []string{"projection", "topic", "partition"})
	commit := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "strata_projection_commit_seconds", Help: "Time to apply and commit a batch.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"projection"})
	delay := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "strata_projection_delay_seconds", Help: "From an event's commit in the store to its commit in the read model.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"projection"})
	if reg != nil {
		events = register(reg, events)
		batches = register(reg, batches)
		gaps = register(reg, gaps)
		conflicts = register(reg, conflicts)
		retries = register(reg, retries)
		halted = register(reg, halted)
		lag = register(reg, lag)
		commit = register(reg, commit)
		delay = register(reg, delay)
	}
	return &metrics{
		name: name, events: events, batches: batches.WithLabelValues(name), gaps: gaps.WithLabelValues(name),
		conflicts: conflicts.WithLabelValues(name), retries: retries.MustCurryWith(prometheus.Labels{"projection": name}),
		halted: halted.WithLabelValues(name), lag: lag, commit: commit.WithLabelValues(name), delay: delay.WithLabelValues(name),
	}
}

// register registers c, or returns the collector already registered
// under its name: the runners of a process share them.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			return are.ExistingCollector.(C)
		}
		panic(err)
	}
	return c
}

func (m *metrics) committed(events []projection.Event, duplicates int, took time.Duration) {
	m.batches.Inc()
	m.commit.Observe(took.Seconds())
	if len(events) > 0 {
		m.events.WithLabelValues(m.name, "applied").Add(float64(len(events)))
		now := time.Now()
		for i := range events {
			m.delay.Observe(now.Sub(events[i].RecordedAt).Seconds())
		}
	}
	if duplicates > 0 {
		m.events.WithLabelValues(m.name, "duplicate").Add(float64(duplicates))
	}
}
