// Package metrics is what the service tells Prometheus: the latency of its
// requests per route, the requests in flight, the Go runtime and the process
// (CPU seconds, resident memory), and the database pool's use. They are
// served on a listener of their own (metrics.port), which the proxy never
// routes: they are for the operator's scraper, not for the internet.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Unmatched is the route label of a request no route took (404, 405): one
// value for all of them, so a scan of random paths cannot grow the series.
const Unmatched = "unmatched"

// Buckets of the latency histogram, in seconds: fine where a healthy
// service answers (a few milliseconds), coarse up to the server's write
// timeout, beyond which nothing is answered anyway.
var Buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics holds the service's collectors in a registry of its own (not
// Prometheus's global one), so tests and benchmarks can make several.
type Metrics struct {
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// codes caches the label value of each status code: strconv.Itoa
	// allocates for every code above 99, and this runs on every request.
	codes [600]string
}

// New returns Metrics with the request collectors, the Go runtime collector
// and the process collector registered.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its handler, by route pattern and status code.",
			Buckets: Buckets,
		}, []string{"route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight",
			Help: "Requests being served now.",
		}),
	}
	for i := range m.codes {
		m.codes[i] = strconv.Itoa(i)
	}
	m.reg.MustRegister(m.duration, m.inFlight,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds a collector, such as a PoolCollector.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Start counts a request in flight; Done must follow.
func (m *Metrics) Start() { m.inFlight.Inc() }

// Done records a request that Start counted: its route pattern (Unmatched
// when none), status code and duration.
func (m *Metrics) Done(route string, code int, d time.Duration) {
	m.inFlight.Dec()
	if route == "" {
		route = Unmatched
	}
	label := "other"
	if code >= 0 && code < len(m.codes) {
		label = m.codes[code]
	}
	m.duration.WithLabelValues(route, label).Observe(d.Seconds())
}
