// Package scrape is one read of a task's Prometheus metrics, reduced to
// what the scaling guide judges, as the service's `app scrape` command
// prints it and deploy:top reads it from a job's log (the image has no
// curl, and the deploying machine cannot reach the overlay network). The
// line is a contract between the two rooms: it lives here, once, for both.
package scrape

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Timeout bounds each scrape.
const Timeout = 5 * time.Second

// Skipped are the routes left out of the latency: the probes of Swarm's
// health check and Traefik's, fast and steady, would hide the requests
// clients make.
var Skipped = []string{"GET /health", "GET /ready"}

// Sample is one scrape of one task: a line of `app scrape`'s output. The
// counters are cumulative since the process started; deploy:top takes
// differences between two samples of the same task.
type Sample struct {
	URL     string    `json:"url"`
	Address string    `json:"address,omitempty"` // the task's address, when the host resolved to several
	Time    time.Time `json:"time"`
	Error   string    `json:"error,omitempty"`

	CPUSeconds float64 `json:"cpu_seconds"` // process_cpu_seconds_total
	RSSBytes   float64 `json:"rss_bytes"`   // process_resident_memory_bytes
	StartTime  float64 `json:"start_time"`  // process_start_time_seconds: a new process resets the counters
	InFlight   float64 `json:"in_flight"`
	// Latency is http_request_duration_seconds summed over the routes
	// clients use (not Skipped).
	Latency Histogram `json:"latency"`
	Pool    *Pool     `json:"pool,omitempty"` // nil when the task has no database pool
}

// Histogram is a cumulative Prometheus histogram.
type Histogram struct {
	Count   float64   `json:"count"`
	Sum     float64   `json:"sum"`
	Bounds  []float64 `json:"bounds"`  // upper bounds, ascending, +Inf left out
	Buckets []float64 `json:"buckets"` // cumulative counts, one per bound
}

// Pool is the database pool's gauges and counters (pgxpool_*).
type Pool struct {
	Acquired    float64 `json:"acquired"`
	Idle        float64 `json:"idle"`
	Max         float64 `json:"max"`
	Total       float64 `json:"total"`
	Acquires    float64 `json:"acquires"`
	Waits       float64 `json:"waits"`        // acquires that found no idle connection
	WaitSeconds float64 `json:"wait_seconds"` // time they waited
	Cancelled   float64 `json:"cancelled"`
}

// Get scrapes u, connecting to addr when it is given (an address the host
// resolved to).
func Get(ctx context.Context, u *url.URL, addr string) Sample {
	s := Sample{URL: u.String(), Time: time.Now().UTC()}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	if addr != "" {
		port := cmpOr(u.Port(), "80")
		s.Address = net.JoinHostPort(addr, port)
		dialer := &net.Dialer{}
		transport.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, s.Address)
		}
	}
	client := &http.Client{Transport: transport, Timeout: Timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		s.Error = err.Error()
		return s
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.Error = "status " + resp.Status
		return s
	}
	if err := s.Read(resp.Body); err != nil {
		s.Error = err.Error()
	}
	return s
}

// Read fills s from Prometheus's text format.
func (s *Sample) Read(r io.Reader) error {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(r, 8<<20))
	if err != nil {
		return fmt.Errorf("parse the metrics: %w", err)
	}
	value := func(name string) (float64, bool) {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) == 0 {
			return 0, false
		}
		m := f.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
		return 0, false
	}
	s.CPUSeconds, _ = value("process_cpu_seconds_total")
	s.RSSBytes, _ = value("process_resident_memory_bytes")
	s.StartTime, _ = value("process_start_time_seconds")
	s.InFlight, _ = value("http_requests_in_flight")
	if f, ok := families["http_request_duration_seconds"]; ok {
		s.Latency = sumHistograms(f.GetMetric())
	}
	if max, ok := value("pgxpool_max_conns"); ok {
		p := &Pool{Max: max}
		p.Acquired, _ = value("pgxpool_acquired_conns")
		p.Idle, _ = value("pgxpool_idle_conns")
		p.Total, _ = value("pgxpool_total_conns")
		p.Acquires, _ = value("pgxpool_acquires_total")
		p.Waits, _ = value("pgxpool_empty_acquires_total")
		p.WaitSeconds, _ = value("pgxpool_empty_acquire_wait_seconds_total")
		p.Cancelled, _ = value("pgxpool_canceled_acquires_total")
		s.Pool = p
	}
	return nil
}

// sumHistograms adds up the histograms of the routes not Skipped. Their
// buckets share bounds (one histogram vector).
func sumHistograms(ms []*dto.Metric) Histogram {
	var h Histogram
	for _, m := range ms {
		route := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				route = l.GetValue()
			}
		}
		if slices.Contains(Skipped, route) || m.Histogram == nil {
			continue
		}
		mh := m.GetHistogram()
		h.Count += float64(mh.GetSampleCount())
		h.Sum += mh.GetSampleSum()
		for _, b := range mh.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue
			}
			i, found := slices.BinarySearch(h.Bounds, b.GetUpperBound())
			if !found {
				h.Bounds = slices.Insert(h.Bounds, i, b.GetUpperBound())
				h.Buckets = slices.Insert(h.Buckets, i, 0)
			}
			h.Buckets[i] += float64(b.GetCumulativeCount())
		}
	}
	return h
}

// Sub is the histogram of what h counted since old (an earlier scrape of
// the same process).
func (h Histogram) Sub(old Histogram) Histogram {
	d := Histogram{Count: h.Count - old.Count, Sum: h.Sum - old.Sum, Bounds: h.Bounds, Buckets: make([]float64, len(h.Buckets))}
	for i, b := range h.Bounds {
		d.Buckets[i] = h.Buckets[i]
		if j, ok := slices.BinarySearch(old.Bounds, b); ok {
			d.Buckets[i] -= old.Buckets[j]
		}
	}
	return d
}

// Quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear within the bucket it falls in; the highest bound when it
// falls beyond every bound. 0 when the histogram counted nothing.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count <= 0 || len(h.Bounds) == 0 {
		return 0
	}
	rank := q * h.Count
	lower, below := 0.0, 0.0
	for i, bound := range h.Bounds {
		if h.Buckets[i] >= rank {
			in := h.Buckets[i] - below
			if in <= 0 {
				return bound
			}
			return lower + (bound-lower)*(rank-below)/in
		}
		lower, below = bound, h.Buckets[i]
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Parse reads the sample lines out of output that may hold others (logs).
func Parse(out string) []Sample {
	var ss []Sample
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var s Sample
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &s) == nil && s.URL != "" && !s.Time.IsZero() {
			ss = append(ss, s)
		}
	}
	return ss
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
