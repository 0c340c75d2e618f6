package relay

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	active, lagSeconds, lastPosition prometheus.Gauge
	batches, events, failures        prometheus.Counter
	batchSize, publish, delay        prometheus.Histogram
	halted                           *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, r *Relay) *metrics {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_relay_active",
			Help: "1 while this process holds the relay lease and publishes, 0 while it stands by."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_relay_lag_seconds",
			Help: "While the relay is behind, the age of the last event it published; 0 once it has caught up."}),
		lastPosition: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_relay_last_position",
			Help: "Global position of the last event published; the store's highest position minus it bounds the lag in events."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_relay_batches_total",
			Help: "Kafka transactions committed by the relay."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_relay_events_total",
			Help: "Events published by the relay."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_relay_failures_total",
			Help: "Attempts that failed (the relay then resumes from the committed checkpoint)."}),
		halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_relay_halted",
			Help: "1 while the relay holds its lease but has halted publishing for the reason: an event too large for Kafka, a topic whose partitions changed, a topic that would lose events, a checkpoint the store refuses; see the log, then restart it."},
			[]string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_relay_batch_events",
			Help: "Events per Kafka transaction.", Buckets: prometheus.ExponentialBuckets(1, 4, 6)}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_relay_publish_seconds",
			Help: "Time to publish and commit a batch.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_relay_delay_seconds",
			Help: "Time from an event's commit in PostgreSQL to its commit in Kafka.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	checkpointAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_relay_checkpoint_age_seconds",
		Help: "Time since the active relay last committed or loaded its checkpoint; 0 while standing by."},
		func() float64 {
			last := r.lastCommit.Load()
			if last == 0 || !r.active.Load() {
				return 0
			}
			return time.Since(time.Unix(0, last)).Seconds()
		})
	for _, reason := range []string{"event_too_large", "partitions_changed", "topic_config", "checkpoint_refused"} {
		m.halted.WithLabelValues(reason)
	}
	reg.MustRegister(m.active, m.lagSeconds, m.lastPosition, m.batches, m.events, m.failures, m.batchSize, m.publish, m.delay, m.halted, checkpointAge)
	return m
}
