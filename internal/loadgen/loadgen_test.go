package loadgen

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsEveryRequestAndFailure(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	res, err := Run(t.Context(), Options{Concurrency: 4, Duration: 300 * time.Millisecond, Request: Get(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || int64(res.Sent) != n.Load() {
		t.Fatalf("sent %d, the server saw %d", res.Sent, n.Load())
	}
	if want := res.Sent / 10; res.Failed != want {
		t.Errorf("failed %d, want %d (every tenth)", res.Failed, want)
	}
	if len(res.Errors) == 0 || len(res.Errors) > MaxErrors || !strings.Contains(res.Errors[0], "status 503") {
		t.Errorf("errors %q, want up to %d naming the 503", res.Errors, MaxErrors)
	}
	if res.FirstFailure.IsZero() || res.LastFailure.Before(res.FirstFailure) || res.LastFailure.Sub(res.FirstFailure) > res.Elapsed {
		t.Errorf("failures from %v to %v in a run of %v", res.FirstFailure, res.LastFailure, res.Elapsed)
	}
	if len(res.Latencies) != res.Sent || res.Percentile(1) < res.Percentile(0.5) {
		t.Errorf("%d latencies for %d requests; p100 %v < p50 %v", len(res.Latencies), res.Sent, res.Percentile(1), res.Percentile(0.5))
	}
	if res.RPS() <= 0 || res.Elapsed < 300*time.Millisecond {
		t.Errorf("rps %v elapsed %v", res.RPS(), res.Elapsed)
	}
}

// A run without Duration ends with its context; a request in flight then
// still finishes and counts.
func TestRunUntilCancelledFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		started.Add(1)
		<-release
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan Result)
	go func() {
		res, _ := Run(ctx, Options{Concurrency: 2, Request: Get(srv.URL)})
		done <- res
	}()
	for started.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	res := <-done
	if res.Sent != 2 || res.Failed != 0 {
		t.Fatalf("sent %d failed %d (%q), want the 2 in flight, answered", res.Sent, res.Failed, res.Errors)
	}
}

func TestPercentile(t *testing.T) {
	r := Result{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}}
	for _, tt := range tests {
		if got := r.Percentile(tt.p); got != tt.want {
			t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := (Result{}).Percentile(0.99); got != 0 {
		t.Errorf("empty run: %v", got)
	}
}

func TestSummarizeTakesMedians(t *testing.T) {
	run := func(sent int, p99 time.Duration) Result {
		lat := make([]time.Duration, 100)
		for i := range lat {
			lat[i] = time.Millisecond
		}
		lat[99] = p99 // nearest rank: the 99th of 100 is still 1 ms unless two are slow
		lat[98] = p99
		return Result{Sent: sent, Elapsed: time.Second, Latencies: lat}
	}
	s := Summarize([]Result{run(100, 5*time.Millisecond), run(300, 9*time.Millisecond), run(200, 7*time.Millisecond)})
	if s.RPS != 200 || s.P99 != 7*time.Millisecond || s.Sent != 600 || s.Runs != 3 {
		t.Fatalf("summary %+v, want the middle run's 200 req/s and 7ms", s)
	}
}

func TestCompareRatiosByRound(t *testing.T) {
	run := func(sent int) Result { return Result{Sent: sent, Elapsed: time.Second} }
	p := Compare("w", "s", []Result{run(100), run(200), run(100)}, []Result{run(90), run(100), run(110)})
	if want := []float64{0.5, 0.9, 1.1}; len(p.RoundRatios) != 3 || p.RoundRatios[0] != want[0] || p.RoundRatios[1] != want[1] || math.Abs(p.RoundRatios[2]-want[2]) > 1e-9 {
		t.Errorf("round ratios %v, want %v (each round's own, sorted)", p.RoundRatios, want)
	}
	if p.RPSRatio() != 1 {
		t.Errorf("median ratio %v, want 100/100", p.RPSRatio())
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	base := Summary{RPS: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond}
	err := WriteTable(&b, "bare", []Pair{{
		Name: "GET /health", SubjectName: "service", Baseline: base,
		Subject:     Summary{RPS: 950, P50: time.Millisecond, P99: 3 * time.Millisecond, Failed: 1},
		RoundRatios: []float64{0.9, 0.95, 1.01},
	}, {
		Name: "GET /health", SubjectName: "service, off", Baseline: base,
		Subject: Summary{RPS: 1000, P50: time.Millisecond, P99: 2 * time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `workload     handler       req/s  p50     p99     failed  req/s ratio  p99 ratio  ratio by round
GET /health  bare          1000   1.00ms  2.00ms  0
             service       950    1.00ms  3.00ms  1       0.95x        1.50x      0.90-1.01
             service, off  1000   1.00ms  2.00ms  0       1.00x        1.00x
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
