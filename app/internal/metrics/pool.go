package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolCollector reports a pgx pool's statistics at each scrape, read from
// pgxpool.Stat: nothing is counted on the request path. The wait series
// answer "is the pool exhausted?": acquires that found no idle connection
// and how long they waited for one.
type PoolCollector struct {
	stat func() *pgxpool.Stat

	acquired, idle, max, total, constructing  *prometheus.Desc
	acquires, waits, waitSeconds, cancelled   *prometheus.Desc
	acquireSeconds, newConns, destroyedByIdle *prometheus.Desc
}

// NewPoolCollector returns a collector of stat, usually (*pgxpool.Pool).Stat.
func NewPoolCollector(stat func() *pgxpool.Stat) *PoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("pgxpool_"+name, help, nil, nil)
	}
	return &PoolCollector{
		stat:            stat,
		acquired:        d("acquired_conns", "Connections in use by the service now."),
		idle:            d("idle_conns", "Idle connections in the pool now."),
		max:             d("max_conns", "The pool's size limit (database.max_conns)."),
		total:           d("total_conns", "Connections open now: acquired, idle and being opened."),
		constructing:    d("constructing_conns", "Connections being opened now."),
		acquires:        d("acquires_total", "Connections acquired from the pool."),
		waits:           d("empty_acquires_total", "Acquires that found no idle connection and waited for one to be opened or released."),
		waitSeconds:     d("empty_acquire_wait_seconds_total", "Time acquires spent waiting because no connection was idle."),
		cancelled:       d("canceled_acquires_total", "Acquires given up (the request's context ended) before a connection was free."),
		acquireSeconds:  d("acquire_seconds_total", "Time spent acquiring connections, waits included."),
		newConns:        d("new_conns_total", "Connections opened."),
		destroyedByIdle: d("max_idle_destroyed_conns_total", "Connections closed for having been idle too long."),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.max, c.total, c.constructing,
		c.acquires, c.waits, c.waitSeconds, c.cancelled, c.acquireSeconds, c.newConns, c.destroyedByIdle} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	gauge := func(d *prometheus.Desc, v int32) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, s.AcquiredConns())
	gauge(c.idle, s.IdleConns())
	gauge(c.max, s.MaxConns())
	gauge(c.total, s.TotalConns())
	gauge(c.constructing, s.ConstructingConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.waits, float64(s.EmptyAcquireCount()))
	counter(c.waitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.cancelled, float64(s.CanceledAcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.destroyedByIdle, float64(s.MaxIdleDestroyCount()))
}
