package scrape

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// exposition is what the service serves, trimmed: two routes a client
// used, the health probe, the process and the pool.
const exposition = `# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{code="200",route="GET /v1/notes",le="0.01"} 8
http_request_duration_seconds_bucket{code="200",route="GET /v1/notes",le="0.1"} 9
http_request_duration_seconds_bucket{code="200",route="GET /v1/notes",le="1"} 10
http_request_duration_seconds_bucket{code="200",route="GET /v1/notes",le="+Inf"} 10
http_request_duration_seconds_sum{code="200",route="GET /v1/notes"} 0.5
http_request_duration_seconds_count{code="200",route="GET /v1/notes"} 10
http_request_duration_seconds_bucket{code="201",route="POST /v1/notes",le="0.01"} 0
http_request_duration_seconds_bucket{code="201",route="POST /v1/notes",le="0.1"} 10
http_request_duration_seconds_bucket{code="201",route="POST /v1/notes",le="1"} 10
http_request_duration_seconds_bucket{code="201",route="POST /v1/notes",le="+Inf"} 10
http_request_duration_seconds_sum{code="201",route="POST /v1/notes"} 0.4
http_request_duration_seconds_count{code="201",route="POST /v1/notes"} 10
http_request_duration_seconds_bucket{code="200",route="GET /health",le="0.01"} 1000
http_request_duration_seconds_bucket{code="200",route="GET /health",le="0.1"} 1000
http_request_duration_seconds_bucket{code="200",route="GET /health",le="1"} 1000
http_request_duration_seconds_bucket{code="200",route="GET /health",le="+Inf"} 1000
http_request_duration_seconds_sum{code="200",route="GET /health"} 1
http_request_duration_seconds_count{code="200",route="GET /health"} 1000
# TYPE http_requests_in_flight gauge
http_requests_in_flight 3
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.3554432e+07
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e+09
# TYPE pgxpool_max_conns gauge
pgxpool_max_conns 4
# TYPE pgxpool_acquired_conns gauge
pgxpool_acquired_conns 4
# TYPE pgxpool_empty_acquires_total counter
pgxpool_empty_acquires_total 7
# TYPE pgxpool_empty_acquire_wait_seconds_total counter
pgxpool_empty_acquire_wait_seconds_total 1.4
`

func TestRead(t *testing.T) {
	var s Sample
	if err := s.Read(strings.NewReader(exposition)); err != nil {
		t.Fatal(err)
	}
	if s.CPUSeconds != 12.5 || s.RSSBytes != 32<<20 || s.InFlight != 3 || s.StartTime != 1.7e9 {
		t.Errorf("process: %+v", s)
	}
	// The health probe is left out; the two routes add up.
	if h := s.Latency; h.Count != 20 || math.Abs(h.Sum-0.9) > 1e-9 || len(h.Bounds) != 3 || h.Buckets[0] != 8 || h.Buckets[1] != 19 || h.Buckets[2] != 20 {
		t.Errorf("latency: %+v", h)
	}
	if p := s.Pool; p == nil || p.Max != 4 || p.Acquired != 4 || p.Waits != 7 || p.WaitSeconds != 1.4 {
		t.Errorf("pool: %+v", p)
	}
	var none Sample
	if err := none.Read(strings.NewReader("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n")); err != nil || none.Pool != nil {
		t.Errorf("a task without a pool: %+v, %v", none.Pool, err)
	}
}

func TestQuantile(t *testing.T) {
	h := Histogram{Count: 100, Bounds: []float64{0.01, 0.1, 1}, Buckets: []float64{50, 90, 100}}
	tests := []struct {
		name string
		h    Histogram
		q    float64
		want float64
	}{
		{"p50 at a bound", h, 0.5, 0.01},
		{"p70 inside a bucket", h, 0.7, 0.01 + 0.09*20/40},
		{"p99", h, 0.99, 0.1 + 0.9*9/10},
		{"empty", Histogram{}, 0.99, 0},
		{"beyond every bound", Histogram{Count: 10, Bounds: []float64{0.01}, Buckets: []float64{5}}, 0.99, 0.01},
		{"the first bucket from 0", Histogram{Count: 10, Bounds: []float64{0.01, 0.1}, Buckets: []float64{10, 10}}, 0.5, 0.005},
	}
	for _, tt := range tests {
		if got := tt.h.Quantile(tt.q); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	old := Histogram{Count: 40, Sum: 1, Bounds: []float64{0.01, 0.1, 1}, Buckets: []float64{30, 40, 40}}
	d := h.Sub(old)
	if d.Count != 60 || d.Buckets[0] != 20 || d.Buckets[1] != 50 || d.Buckets[2] != 60 {
		t.Errorf("Sub: %+v", d)
	}
}

// Get and Parse agree: what app scrape prints, deploy:top reads.
func TestGetAndParse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(exposition))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/metrics")
	s := Get(t.Context(), u, "127.0.0.1")
	if s.Error != "" || s.Pool == nil || !strings.HasPrefix(s.Address, "127.0.0.1:") {
		t.Fatalf("Get: %+v", s)
	}
	bad, _ := url.Parse(srv.URL + "/nope")
	if e := Get(t.Context(), bad, ""); !strings.Contains(e.Error, "404") {
		t.Errorf("a 404: %+v", e)
	}
	line, _ := json.Marshal(s)
	got := Parse("log line\n" + string(line) + "\n{\"not\":\"a sample\"}\n")
	if len(got) != 1 || got[0].CPUSeconds != 12.5 || got[0].Latency.Count != 20 || !got[0].Time.Equal(s.Time) {
		t.Errorf("Parse: %+v", got)
	}
}
