package deploy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/internal/probe"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

func TestJudgeSmoke(t *testing.T) {
	const ready, version = "http://tasks.app:8080/ready", "http://tasks.app:8080/version"
	ok := func(addr string) []probe.Result {
		return []probe.Result{
			{URL: ready, Address: addr, Status: 200, Body: json.RawMessage(`{"status":"ready"}`)},
			{URL: version, Address: addr, Status: 200, Body: json.RawMessage(`{"version":"v2.0.0","schema":{"expected":3,"database":3}}`)},
		}
	}
	tests := []struct {
		name string
		rs   []probe.Result
		want string // "" passes
	}{
		{"every task ready on the release", append(ok("10.0.1.5:8080"), ok("10.0.1.6:8080")...), ""},
		{"one task not ready", append(ok("10.0.1.5:8080"), probe.Result{URL: ready, Address: "10.0.1.6:8080", Status: 503,
			Body: json.RawMessage(`{"status":"not ready","checks":{"redis":"connection refused"}}`)}),
			`http://tasks.app:8080/ready at 10.0.1.6:8080 answered 503 {"status":"not ready","checks":{"redis":"connection refused"}}`},
		{"another version", []probe.Result{ok("a")[0], {URL: version, Address: "a", Status: 200, Body: json.RawMessage(`{"version":"v1.0.0"}`)}},
			"http://tasks.app:8080/version at a reports version v1.0.0, not v2.0.0"},
		{"no version", []probe.Result{ok("a")[0], {URL: version, Status: 200, Text: "hello"}}, "answered no version"},
		{"an error", []probe.Result{{URL: ready, Error: "lookup tasks.app: no such host"}, ok("a")[1]}, "ready: lookup tasks.app: no such host"},
		{"nothing asked", nil, "ready: no answer; http://tasks.app:8080/version: no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeSmoke(tt.rs, ready, version, "v2.0.0")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("judgeSmoke = %q, want %q", got, tt.want)
			}
		})
	}
	if got := judgeSmoke([]probe.Result{ok("a")[0], {URL: version, Status: 200, Body: json.RawMessage(`{"version":"x"}`)}}, ready, version, ""); got != "" {
		t.Errorf("without a version to compare: %q", got)
	}
}

// The URL form of the smoke check asks from this machine, retries until
// its timeout, and fails naming what was wrong.
func TestSmokeCheckByURL(t *testing.T) {
	defer func(d time.Duration) { smokeRetry = d }(smokeRetry)
	smokeRetry = 50 * time.Millisecond
	var calls atomic.Int32
	version := "v2.0.0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/ready":
			if n <= 2 { // not ready at first: a proxy still warming up
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"status":"ready"}`))
		case "/version":
			_, _ = w.Write([]byte(`{"version":"` + version + `"}`))
		}
	}))
	t.Cleanup(srv.Close)
	var out bytes.Buffer
	d := &Session{Env: &envfile.Environment{Name: "staging", Smoke: &envfile.Smoke{URL: srv.URL, Timeout: 2 * time.Second}}, Out: &out}
	if err := d.smokeCheck(t.Context(), nil, "v2.0.0"); err != nil {
		t.Fatalf("smoke check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "not yet: "+srv.URL+"/ready answered 503") || !strings.Contains(out.String(), "Smoke check: passed") {
		t.Errorf("output:\n%s", out.String())
	}

	d.Env.Smoke.Timeout = 300 * time.Millisecond
	version = "v1.0.0"
	start := time.Now()
	err := d.smokeCheck(t.Context(), nil, "v2.0.0")
	if err == nil || !strings.Contains(err.Error(), "smoke check failed: "+srv.URL+"/version reports version v1.0.0, not v2.0.0") {
		t.Fatalf("smoke check of the wrong release: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a failing smoke check took %s (timeout 300ms)", took)
	}
}

func TestNothingToSmoke(t *testing.T) {
	spec := func(image string, replicas uint64) swarm.ServiceSpec {
		return swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		}
	}
	specs := func(app, worker uint64) map[string]swarm.ServiceSpec {
		return map[string]swarm.ServiceSpec{
			"app":      spec("127.0.0.1:5000/app:v1", app),
			"worker":   spec("127.0.0.1:5000/app:v1", worker),
			"postgres": spec("postgres:16", 1),
		}
	}
	tests := []struct {
		name  string
		smoke envfile.Smoke
		specs map[string]swarm.ServiceSpec
		want  string
	}{
		{"service running", envfile.Smoke{Service: "app"}, specs(2, 1), ""},
		{"service scaled to 0", envfile.Smoke{Service: "app"}, specs(0, 1), "app run(s) 0 replicas"},
		{"another service scaled to 0", envfile.Smoke{Service: "app"}, specs(2, 0), ""},
		{"url: one release service still runs", envfile.Smoke{URL: "https://x"}, specs(0, 1), ""},
		{"url: every release service at 0", envfile.Smoke{URL: "https://x"}, specs(0, 0), "app, worker run(s) 0 replicas"},
		{"service not in the stack", envfile.Smoke{Service: "web"}, specs(0, 0), ""},
	}
	for _, tt := range tests {
		if got := nothingToSmoke(&tt.smoke, tt.specs, "127.0.0.1:5000/app"); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
