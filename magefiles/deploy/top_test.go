package deploy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/internal/scrape"
)

// Each row of the scaling guide, and what does not meet it.
func TestJudge(t *testing.T) {
	limited := taskInfo{Name: "app.1", CPULimit: 0.5, MemLimit: 256 << 20}
	node := taskInfo{Name: "app.1", CPULimit: 2, CPUOfNode: true, MemLimit: 8 << 30, MemOfNode: true}
	pool := func(acquired float64) *scrape.Pool { return &scrape.Pool{Acquired: acquired, Max: 4} }
	tests := []struct {
		name string
		row  Row
		want []string // the signals' Short, in order
		says []string // in the advice
	}{
		{name: "quiet", row: Row{Task: limited, Samples: 2, CPU: 20, Memory: 30, Pool: pool(1)}},
		{name: "one sample judges nothing", row: Row{Task: limited, Samples: 1, CPU: 99, Memory: 99}},
		{name: "CPU above 70% of the limit", row: Row{Task: limited, Samples: 2, CPU: 92, CPUAll: true, Window: 15 * time.Second},
			want: []string{"CPU > 70%"}, says: []string{"CPU at 92% of its limit (0.5 CPU) over 15s", "add replicas", "raise APP_CPUS"}},
		{name: "CPU of the node", row: Row{Task: node, Samples: 2, CPU: 80, CPUAll: true},
			want: []string{"CPU > 70%"}, says: []string{"its node's 2 CPUs (no limit)", "a bigger server"}},
		{name: "CPU high on average, not sustained", row: Row{Task: limited, Samples: 4, CPU: 75, CPUSeries: []float64{20, 95, 95}},
			want: nil},
		{name: "CPU at 70% is not above", row: Row{Task: limited, Samples: 2, CPU: 70, CPUAll: true}},
		{name: "memory above 80%", row: Row{Task: limited, Samples: 2, Memory: 85},
			want: []string{"memory > 80%"}, says: []string{"memory at 85% of 256MiB", "add replicas, or fix a leak"}},
		{name: "memory rising", row: Row{Task: limited, Samples: 3, Memory: 90, MemoryRise: 40 << 20},
			want: []string{"memory > 80%"}, says: []string{"rising (40MiB a minute): look for a leak first"}},
		{name: "pool exhausted", row: Row{Task: limited, Samples: 2, Pool: pool(4), PoolFull: true, Waits: 12.5, AvgWait: 0.2},
			want: []string{"pool exhausted"}, says: []string{"all 4 connections in use during the window", "12.5 acquires/s waited", "200.0ms on average", "raise the pool (database.max_conns, DATABASE_MAX_CONNS", "or add replicas"}},
		{name: "pool full without waits", row: Row{Task: limited, Samples: 2, Pool: pool(4), PoolFull: true}},
		{name: "waits on a pool never full", row: Row{Task: limited, Samples: 2, Pool: pool(1), Waits: 3}},
		{name: "CPU-bound, the pool full as a consequence", row: Row{Task: limited, Samples: 2, CPU: 90, CPUAll: true, Pool: pool(4), PoolFull: true, Waits: 100},
			want: []string{"CPU > 70%"}, says: []string{"the database pool is full too, 100.0 acquires/s waiting: a consequence", "raising the pool would not help"}},
		{name: "p99 rising", row: Row{Task: limited, Samples: 3, P99: 0.4, P99Before: 0.1},
			want: []string{"p99 rising"}, says: []string{"p99 400.0ms, from 100.0ms", "add replicas or optimise the code"}},
		{name: "p99 rising, CPU-bound", row: Row{Task: limited, Samples: 3, CPU: 95, CPUAll: true, P99: 0.4, P99Before: 0.1},
			want: []string{"CPU > 70%", "p99 rising"}, says: []string{"CPU-bound (above): a bigger server"}},
		{name: "p99 rising, waiting for the pool", row: Row{Task: limited, Samples: 3, Pool: pool(4), PoolFull: true, Waits: 2, P99: 2, P99Before: 0.5},
			want: []string{"pool exhausted", "p99 rising"}, says: []string{"I/O-bound, so add replicas or raise the pool"}},
		{name: "p99 rising within the noise", row: Row{Task: limited, Samples: 3, P99: 0.004, P99Before: 0.001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(tt.row)
			var short []string
			var advice strings.Builder
			for _, s := range got {
				short = append(short, s.Short)
				advice.WriteString(s.Advice + "\n")
			}
			if strings.Join(short, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("signals %q, want %q:\n%s", short, tt.want, advice.String())
			}
			for _, s := range tt.says {
				if !strings.Contains(advice.String(), s) {
					t.Errorf("the advice does not say %q:\n%s", s, advice.String())
				}
			}
		})
	}
}

// sample is a scrape of a task at t seconds.
func sample(addr string, t0 time.Time, t, cpu, rss float64, requests float64, slow bool, p *scrape.Pool) scrape.Sample {
	h := scrape.Histogram{Count: requests, Bounds: []float64{0.01, 0.1, 1}, Buckets: []float64{requests, requests, requests}}
	if slow {
		h.Buckets = []float64{0, 0, requests}
	}
	return scrape.Sample{URL: "http://tasks.app:9090/metrics", Address: addr, Time: t0.Add(time.Duration(t * float64(time.Second))),
		CPUSeconds: cpu, RSSBytes: rss, StartTime: 1, Latency: h, Pool: p}
}

// Rows from samples: rates over the window, the task's name and limits
// from the Swarm, a restarted process's earlier samples dropped.
func TestTopRows(t *testing.T) {
	t0 := time.Now()
	full := &scrape.Pool{Acquired: 1, Max: 1, Waits: 0}
	waited := &scrape.Pool{Acquired: 1, Max: 1, Waits: 50, WaitSeconds: 10}
	samples := map[string][]scrape.Sample{
		// 0.09 cores of a 0.1 limit over 10s, 20 requests/s.
		"10.0.1.5:9090": {sample("10.0.1.5:9090", t0, 0, 1, 50<<20, 0, false, full), sample("10.0.1.5:9090", t0, 10, 1.9, 50<<20, 200, false, full)},
		// the pool exhausted: 5 waits/s of 200ms.
		"10.0.1.6:9090": {sample("10.0.1.6:9090", t0, 0, 1, 50<<20, 0, false, full), sample("10.0.1.6:9090", t0, 10, 1.1, 50<<20, 100, true, waited)},
	}
	restarted := sample("10.0.1.7:9090", t0, 10, 0.1, 50<<20, 10, false, nil)
	restarted.StartTime = 2
	samples["10.0.1.7:9090"] = []scrape.Sample{sample("10.0.1.7:9090", t0, 0, 5, 50<<20, 0, false, nil), restarted}
	tasks := map[string]taskInfo{
		"10.0.1.5": {Service: "app", Name: "app.1", Node: "n1", CPULimit: 0.1, MemLimit: 256 << 20},
		"10.0.1.6": {Service: "app", Name: "app.2", Node: "n1", CPULimit: 0.1, MemLimit: 256 << 20},
		"10.0.1.7": {Service: "app", Name: "app.3", Node: "n1", CPULimit: 0.1, MemLimit: 256 << 20},
	}
	rows := topRows(samples, tasks)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	cpu, pool, restart := rows[0], rows[1], rows[2]
	if cpu.Task.Name != "app.1" || int(cpu.CPU+0.5) != 90 || cpu.RPS != 20 || math.Abs(cpu.P99-0.0099) > 1e-9 || len(cpu.Signals) != 1 || cpu.Signals[0].Short != "CPU > 70%" {
		t.Errorf("app.1: %+v", cpu)
	}
	if pool.Waits != 5 || pool.AvgWait != 0.2 || len(pool.Signals) != 1 || pool.Signals[0].Short != "pool exhausted" || pool.P99 < 0.1 {
		t.Errorf("app.2: %+v", pool)
	}
	if restart.Samples != 1 || restart.Signals != nil {
		t.Errorf("app.3, restarted between its samples: %+v", restart)
	}
	var out bytes.Buffer
	printTop(&out, rows, true)
	for _, want := range []string{"SERVICE  TASK", "app.1", "90% of 0.1", "20.0", "CPU > 70%", "app.2", "1/1", "pool exhausted", "one sample: no rates yet",
		"Advice (the deployment standard's scaling guide):", "app.1 (n1): CPU at 90%", "app.2 (n1): database pool exhausted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table does not show %q:\n%s", want, out.String())
		}
	}

	var svg bytes.Buffer
	if err := topSVG(&svg, samples, tasks); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&svg)
	lines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines < 4 {
		t.Errorf("%d lines plotted, want CPU, pool and p99 of the tasks", lines)
	}
}

func TestOwnNetworksAndMetricsPort(t *testing.T) {
	spec := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{Env: []string{"METRICS_PORT=9191"}},
		Networks:      []swarm.NetworkAttachmentConfig{{Target: "id-internal"}, {Target: "id-public"}},
	}}
	names := map[string]string{"id-internal": "svc_internal", "id-public": "traefik-public"}
	if got := ownNetworks(spec, "svc", names).TaskTemplate.Networks; len(got) != 1 || got[0].Target != "id-internal" {
		t.Errorf("own networks: %+v", got)
	}
	if got := ownNetworks(spec, "other", names).TaskTemplate.Networks; len(got) != 2 {
		t.Errorf("a spec on none of the stack's networks keeps its own: %+v", got)
	}
	if len(spec.TaskTemplate.Networks) != 2 {
		t.Error("the spec given was changed")
	}
	if p := metricsPort(spec); p != 9191 {
		t.Errorf("metrics port %d", p)
	}
	if p := metricsPort(swarm.ServiceSpec{}); p != 9090 {
		t.Errorf("default metrics port %d", p)
	}
	if s := sparkline([]float64{0, 50, 100, 150}); s != "▁▅██" {
		t.Errorf("sparkline %q", s)
	}
}
