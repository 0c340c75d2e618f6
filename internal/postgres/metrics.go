package postgres

import "github.com/prometheus/client_golang/prometheus"

// poolCollector exports the connection pool's figures, read when scraped.
type poolCollector struct {
	s                                   *Store
	conns, max, acquires, empty, waited *prometheus.Desc
	statements, grouped                 *prometheus.Desc
	scavenged                           *prometheus.Desc
}

// Collector returns a Prometheus collector of the store's connection pool —
// connections by state, the maximum, acquisitions, those that had to wait
// for a connection, and the time spent waiting — and of group commit: the
// statements that stored single-event appends and the appends they held.
func (s *Store) Collector() prometheus.Collector {
	return &poolCollector{
		s:        s,
		conns:    prometheus.NewDesc("strata_db_pool_connections", "Connections in the store's pool, by state.", []string{"state"}, nil),
		max:      prometheus.NewDesc("strata_db_pool_max_connections", "The most connections the store's pool opens.", nil, nil),
		acquires: prometheus.NewDesc("strata_db_pool_acquires_total", "Connections taken from the pool.", nil, nil),
		empty:    prometheus.NewDesc("strata_db_pool_empty_acquires_total", "Acquisitions that found no idle connection and waited or opened one.", nil, nil),
		waited:   prometheus.NewDesc("strata_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil),
		statements: prometheus.NewDesc("strata_append_group_statements_total",
			"Statements that stored groups of single-event appends (group commit).", nil, nil),
		grouped: prometheus.NewDesc("strata_append_grouped_appends_total",
			"Single-event appends stored through groups; divided by the statements, the mean group size.", nil, nil),
		scavenged: prometheus.NewDesc("strata_scavenged_events_total",
			"Events the scavenger removed: excluded by deletions and retention settings, and published.", nil, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.max, c.acquires, c.empty, c.waited, c.statements, c.grouped, c.scavenged} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(st.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.empty, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, st.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(c.scavenged, prometheus.CounterValue, float64(c.s.scavenged.Load()))
	if g := c.s.groups; g != nil {
		ch <- prometheus.MustNewConstMetric(c.statements, prometheus.CounterValue, float64(g.statements.Load()))
		ch <- prometheus.MustNewConstMetric(c.grouped, prometheus.CounterValue, float64(g.appends.Load()))
	}
}
