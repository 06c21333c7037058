package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/metrics"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// scrape serves m's endpoint once and parses what it answers.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return families
}

// value returns the metric of family name whose labels include want.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := families[name]
	if !ok {
		t.Fatalf("no %s in the scrape", name)
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s with labels %v in the scrape", name, want)
	return nil
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name        string
		route       string
		code        int
		d           time.Duration
		wantLabels  map[string]string
		wantSeconds float64
	}{
		{"a route", "GET /v1/notes/{id}", 200, 3 * time.Millisecond, map[string]string{"route": "GET /v1/notes/{id}", "code": "200"}, 0.003},
		{"no route took it", "", 404, time.Millisecond, map[string]string{"route": metrics.Unmatched, "code": "404"}, 0.001},
		{"a status out of range", "GET /health", 999, time.Millisecond, map[string]string{"route": "GET /health", "code": "other"}, 0.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			m.Start()
			m.Start()
			if got := value(t, scrape(t, m), "http_requests_in_flight", nil).GetGauge().GetValue(); got != 2 {
				t.Errorf("in flight after two starts = %v, want 2", got)
			}
			m.Done(tt.route, tt.code, tt.d)
			families := scrape(t, m)
			if got := value(t, families, "http_requests_in_flight", nil).GetGauge().GetValue(); got != 1 {
				t.Errorf("in flight after one of two ended = %v, want 1", got)
			}
			h := value(t, families, "http_request_duration_seconds", tt.wantLabels).GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != tt.wantSeconds {
				t.Errorf("histogram count %d sum %v, want 1 and %v", h.GetSampleCount(), h.GetSampleSum(), tt.wantSeconds)
			}
		})
	}
}

// The runtime and process collectors answer the scaling guide's questions:
// CPU seconds and resident memory, goroutines and heap.
func TestRuntimeAndProcess(t *testing.T) {
	families := scrape(t, metrics.New())
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", "go_memstats_heap_inuse_bytes"} {
		if _, ok := families[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if rss := value(t, families, "process_resident_memory_bytes", nil).GetGauge().GetValue(); rss <= 0 {
		t.Errorf("process_resident_memory_bytes = %v, want more than 0", rss)
	}
}

// poolMetrics opens a pool on url, closed when the test ends, and Metrics
// that collect it.
func poolMetrics(t *testing.T, url string) (*pgxpool.Pool, *metrics.Metrics) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	m := metrics.New()
	if err := m.Register(metrics.NewPoolCollector(pool.Stat)); err != nil {
		t.Fatal(err)
	}
	return pool, m
}

// A pool that never connected reports its size limit and nothing in use.
func TestPoolCollectorIdlePool(t *testing.T) {
	_, m := poolMetrics(t, "postgres://u:p@127.0.0.1:1/db?pool_max_conns=7")
	families := scrape(t, m)
	for name, want := range map[string]float64{"pgxpool_max_conns": 7, "pgxpool_acquired_conns": 0, "pgxpool_total_conns": 0} {
		if got := value(t, families, name, nil).GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// An exhausted pool shows: connections acquired up to the limit, and an
// acquire that had to wait, with its wait time.
func TestIntegrationPoolCollectorExhausted(t *testing.T) {
	pool, m := poolMetrics(t, dbtest.NewDatabase(t, false)+"&pool_max_conns=2")
	ctx := t.Context()
	a, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	families := scrape(t, m)
	for name, want := range map[string]float64{"pgxpool_acquired_conns": 2, "pgxpool_max_conns": 2, "pgxpool_idle_conns": 0} {
		if got := value(t, families, name, nil).GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	const hold = 200 * time.Millisecond
	go func() {
		time.Sleep(hold)
		a.Release()
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pool.Acquire(waitCtx) // waits for a's release
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	b.Release()
	families = scrape(t, m)
	// All three found no idle connection: two waited for one to be opened,
	// the last for one to be released.
	if got := value(t, families, "pgxpool_empty_acquires_total", nil).GetCounter().GetValue(); got != 3 {
		t.Errorf("pgxpool_empty_acquires_total = %v, want 3", got)
	}
	if got := value(t, families, "pgxpool_empty_acquire_wait_seconds_total", nil).GetCounter().GetValue(); got < hold.Seconds()*0.9 {
		t.Errorf("pgxpool_empty_acquire_wait_seconds_total = %v, want at least about %v", got, hold.Seconds())
	}
	if got := value(t, families, "pgxpool_acquires_total", nil).GetCounter().GetValue(); got != 3 {
		t.Errorf("pgxpool_acquires_total = %v, want 3", got)
	}
}

// The scrape is the text format Prometheus reads, with help for each series.
func TestHandlerFormat(t *testing.T) {
	m := metrics.New()
	m.Start()
	m.Done("GET /health", 200, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"# HELP http_request_duration_seconds ",
		"# TYPE http_request_duration_seconds histogram",
		`http_request_duration_seconds_bucket{code="200",route="GET /health",le="0.001"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %q", want)
		}
	}
}
