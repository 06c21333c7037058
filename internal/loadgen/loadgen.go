// Package loadgen sends HTTP requests from a fixed number of workers, each
// sending its next request as soon as the last one ended (a closed loop),
// and reports what came back: requests sent, failed, throughput and latency
// percentiles. The benchmark that compares the service with a bare handler
// uses it, and so do the zero-downtime tests that count failed requests
// through the proxy.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Options configure Run.
type Options struct {
	// Concurrency is the number of workers, each with one request in
	// flight at a time. 1 when 0.
	Concurrency int
	// Duration bounds the run; 0 runs until ctx ends. A request in flight
	// at the end finishes and counts.
	Duration time.Duration
	// Request makes each request; it must be safe for concurrent use.
	Request func(ctx context.Context) (*http.Request, error)
	// Client sends the requests; nil gives a keep-alive client with one
	// idle connection per worker and a 10 s timeout.
	Client *http.Client
	// Check judges a response whose body was read; nil wants 200.
	Check func(resp *http.Response, body []byte) error
}

// MaxErrors is how many failures a Result keeps the text of.
const MaxErrors = 10

// Result is what a run measured.
type Result struct {
	Sent, Failed int
	Elapsed      time.Duration
	// Latencies of every request, failed ones included, in ascending order.
	Latencies []time.Duration
	Errors    []string // the first MaxErrors failures, with their time
	// FirstFailure and LastFailure bound the failures in time (when each
	// failed request started): the window a change left clients without
	// service. Zero when none failed.
	FirstFailure, LastFailure time.Time
}

// RPS is the requests completed per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Percentile returns the latency below which a fraction p (0 < p <= 1) of
// the requests fall (nearest rank), or 0 for an empty run.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(r.Latencies)))) - 1
	return r.Latencies[min(max(rank, 0), len(r.Latencies)-1)]
}

// Run sends requests until Duration has passed or ctx ends, whichever
// comes first, then waits for those in flight. Its error is for a run that
// could not start; failed requests are counted in the Result.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Request == nil {
		return Result{}, errors.New("loadgen: no Request function")
	}
	workers := max(o.Concurrency, 1)
	hc := o.Client
	if hc == nil {
		hc = &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxIdleConns: workers},
		}
		defer hc.CloseIdleConnections()
	}
	check := o.Check
	if check == nil {
		check = want200
	}
	// The clock starts before the deadline is set, so a run bounded by
	// Duration never reports less than Duration.
	start := time.Now()
	runCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}

	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			// Each worker keeps its own latencies: no lock per request.
			var lat []time.Duration
			for runCtx.Err() == nil {
				t0 := time.Now()
				err := one(context.WithoutCancel(ctx), hc, o.Request, check)
				d := time.Since(t0)
				lat = append(lat, d)
				if err != nil {
					mu.Lock()
					res.Failed++
					if res.FirstFailure.IsZero() || t0.Before(res.FirstFailure) {
						res.FirstFailure = t0
					}
					if t0.After(res.LastFailure) {
						res.LastFailure = t0
					}
					if len(res.Errors) < MaxErrors {
						res.Errors = append(res.Errors, t0.Format("15:04:05.000")+" "+err.Error())
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Sent = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res, nil
}

// one sends one request and judges its response. The request is not
// cancelled when the run ends: one in flight then finishes and counts.
func one(ctx context.Context, hc *http.Client, newReq func(context.Context) (*http.Request, error), check func(*http.Response, []byte) error) error {
	req, err := newReq(ctx)
	if err != nil {
		return fmt.Errorf("make request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", req.Method, req.URL, err)
	}
	if err := check(resp, body); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	return nil
}

// want200 is the Check when Options has none.
func want200(resp *http.Response, _ []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s, want 200", resp.Status)
	}
	return nil
}

// Get is a Request function for a GET of url.
func Get(url string) func(context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
}
