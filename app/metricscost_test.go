package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	configfiles "github.com/fractionate/service-template/config"

	"github.com/fractionate/service-template/app/internal/config"
	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/health"
	"github.com/fractionate/service-template/app/internal/metrics"
	"github.com/fractionate/service-template/app/internal/notes"
	"github.com/fractionate/service-template/app/internal/postgres"
	"github.com/fractionate/service-template/internal/loadgen"
)

var (
	costDuration    = flag.Duration("metricscost.duration", 2*time.Second, "BenchmarkIntegrationMetricsCost: length of each measured run")
	costRounds      = flag.Int("metricscost.rounds", 7, "BenchmarkIntegrationMetricsCost: runs per handler and workload (medians are reported)")
	costConcurrency = flag.Int("metricscost.concurrency", 8, "BenchmarkIntegrationMetricsCost: requests in flight")
)

// BenchmarkIntegrationMetricsCost measures what the service's HTTP layer
// costs: the service's handler as serve builds it, metrics on (request ID,
// request log line, routing, JSON errors, Prometheus histogram and
// in-flight gauge), against a bare net/http handler returning the same
// bytes, side by side in one run on loopback, on /health and on GET
// /v1/notes against a real Postgres (both handlers read the notes through
// the same store and pool; the bare one has no middleware and no mux). The
// service with metrics off runs beside them, to show what the metrics cost
// on their own. Runs take turns, so a disturbance on the machine hits all;
// the table shows medians, and the spread of the ratios by round.
// go tool mage bench:metrics runs it.
func BenchmarkIntegrationMetricsCost(b *testing.B) {
	ctx := b.Context()
	cfg, err := costConfig(dbtest.NewDatabase(b, true))
	if err != nil {
		b.Fatal(err)
	}
	pool, err := postgres.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns, cfg.Database.QueryTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	store := notes.NewStore(pool, cfg.Database.QueryTimeout)
	for i := range 20 {
		if _, err := store.Create(ctx, fmt.Sprintf("note %d", i), strings.Repeat("body ", 20)); err != nil {
			b.Fatal(err)
		}
	}
	// The request log goes where a process's stderr would: a file, one
	// write per line (not io.Discard, which would hide that cost).
	logFile, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logFile.Close() })
	m := metrics.New()
	if err := m.Register(metrics.NewPoolCollector(pool.Stat)); err != nil {
		b.Fatal(err)
	}
	ready := health.NewReadiness(cfg.Readiness.Timeout, map[string]health.Check{"postgres": postgres.Ping(pool)})
	log := newLogger(cfg, logFile)
	bare := startCostServer(b, cfg, bareHandler(store))
	app := startCostServer(b, cfg, newHandler(cfg, log, pool, ready, nil, m))
	// The service without metrics too, to show what they cost on their own.
	appOff := startCostServer(b, cfg, newHandler(cfg, log, pool, ready, nil, nil))
	handlers := []string{bare, app, appOff}

	workloads := []struct{ name, path string }{
		{"GET /health", "/health"},
		{"GET /v1/notes (Postgres)", "/v1/notes"},
	}
	sent := map[string]int{} // by path, to the service with metrics
	run := func(base, path string, d time.Duration) loadgen.Result {
		res, err := loadgen.Run(ctx, loadgen.Options{Concurrency: *costConcurrency, Duration: d, Request: loadgen.Get(base + path)})
		if err != nil {
			b.Fatal(err)
		}
		if base == app {
			sent[path] += res.Sent
		}
		return res
	}
	for _, w := range workloads {
		for _, h := range handlers[1:] {
			same(b, bare+w.path, h+w.path)
		}
		sent[w.path]++ // same's request
		for _, h := range handlers {
			run(h, w.path, time.Second) // warm-up: connections, pool, caches
		}
	}
	// Rounds outside, workloads inside, and who goes first rotating: a
	// disturbance on the machine, or what one workload leaves behind,
	// falls on every handler alike.
	runs := make(map[string][][]loadgen.Result) // by handler, by workload
	for _, h := range handlers {
		runs[h] = make([][]loadgen.Result, len(workloads))
	}
	for i := range *costRounds {
		for j, w := range workloads {
			for k := range handlers {
				h := handlers[(i+k)%len(handlers)]
				runs[h][j] = append(runs[h][j], run(h, w.path, *costDuration))
			}
		}
	}
	var pairs []loadgen.Pair
	for j, w := range workloads {
		pairs = append(pairs,
			loadgen.Compare(w.name, "service", runs[bare][j], runs[app][j]),
			loadgen.Compare(w.name, "service, metrics off", runs[bare][j], runs[appOff][j]))
	}

	// The metrics were on: every request to the service is in its histogram.
	for path, n := range sent {
		route := "GET " + path
		if got := histogramCount(b, m, route); got != n {
			b.Errorf("http_request_duration_seconds_count{route=%q} = %d, want the %d requests sent", route, got, n)
		}
	}
	fmt.Printf("\nThe service (metrics on, and off) against a bare net/http handler, loopback, %d in flight, %d runs of %s each (medians):\n\n",
		*costConcurrency, *costRounds, *costDuration)
	if err := loadgen.WriteTable(os.Stdout, "bare", pairs); err != nil {
		b.Fatal(err)
	}
	for _, p := range pairs {
		if p.SubjectName == "service" {
			b.ReportMetric(p.RPSRatio(), strings.Fields(p.Name)[1]+"-rps-ratio")
		}
	}
}

// costConfig is production's configuration with the benchmark's database.
func costConfig(dbURL string) (*config.Config, error) {
	cfg, _, err := config.Load(config.Sources{
		Environ: map[string]string{"APP_ENV": config.Production, "DATABASE_URL": dbURL},
		Files:   configfiles.Files,
	})
	return cfg, err
}

// startCostServer serves h on loopback with the service's server timeouts.
func startCostServer(b *testing.B, cfg *config.Config, h http.Handler) string {
	b.Helper()
	s := httptest.NewUnstartedServer(h)
	o := serverOptions(cfg)
	s.Config.ReadHeaderTimeout, s.Config.ReadTimeout = o.ReadTimeout, o.ReadTimeout
	s.Config.WriteTimeout, s.Config.IdleTimeout = o.WriteTimeout, o.IdleTimeout
	s.Start()
	b.Cleanup(s.Close)
	return s.URL
}

// bareHandler is the least a net/http service can do for the same bytes.
func bareHandler(store *notes.Store) http.Handler {
	health := []byte(`{"status":"ok"}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/health":
			_, _ = w.Write(health)
		case "/v1/notes":
			list, err := store.List(r.Context(), 20, 0)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"notes": list})
		default:
			http.NotFound(w, r)
		}
	})
}

// same fails b unless both URLs answer 200 with the same body.
func same(b *testing.B, bareURL, appURL string) {
	b.Helper()
	get := func(url string) []byte {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s %v", url, resp.Status, err)
		}
		return body
	}
	if x, y := get(bareURL), get(appURL); !bytes.Equal(x, y) {
		b.Fatalf("the bare handler and the service answer different bodies:\n%s\n%s", x, y)
	}
}

// histogramCount scrapes m and returns the request count of route.
func histogramCount(b *testing.B, m *metrics.Metrics, route string) int {
	b.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, mf := range families["http_request_duration_seconds"].GetMetric() {
		for _, l := range mf.GetLabel() {
			if l.GetName() == "route" && l.GetValue() == route {
				n += int(mf.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}
