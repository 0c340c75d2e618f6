package httpapi

import "github.com/prometheus/client_golang/prometheus"

// metrics are the writer's Prometheus metrics of appends; the Router keeps
// those of requests.
type metrics struct {
	appends       *prometheus.CounterVec
	events        *prometheus.CounterVec
	appendLatency prometheus.Histogram
}

// Outcomes of an append, the label of the append metrics.
const (
	outcomeStored      = "stored"
	outcomeReplayed    = "replayed"
	outcomeConflict    = "conflict"
	outcomeRejected    = "rejected"
	outcomeUnavailable = "unavailable"
	outcomeError       = "error"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_appends_total",
			Help: "Append requests by outcome: stored, replayed (an idempotent retry), conflict, rejected (bad input), unavailable, error.",
		}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_append_events_total",
			Help: "Events in append requests, by the append's outcome.",
		}, []string{"outcome"}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_append_duration_seconds",
			Help:    "Time the store took to append, from validated request to commit.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
	}
	reg.MustRegister(m.appends, m.events, m.appendLatency)
	return m
}
