package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/migrate"
	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/migrations"
)

// The test binary doubles as the app binary: with APP_RUN_MAIN=1 it runs
// main, so tests can start real processes, send them signals and read their
// exit codes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("APP_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(dbtest.Main(m))
}

// app is a started app process.
type app struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	base    string // http://127.0.0.1:port
	metrics string // the metrics listener's URL, when METRICS_PORT was left to startApp
	exited  chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appCmd prepares the app with a clean environment: only the variables given,
// run in an empty directory so no developer's .env or secrets leak in.
func appCmd(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"APP_RUN_MAIN=1", "APP_ENV=test", "SECRETS_DIR=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// startApp runs `app serve` and waits until /health answers.
func startApp(t *testing.T, env map[string]string) *app {
	t.Helper()
	port := dockertest.FreePort(t)
	env["HTTP_PORT"] = strconv.Itoa(port)
	env["HTTP_HOST"] = "127.0.0.1"
	// Apps started side by side must not share the default metrics port.
	metricsPort := dockertest.FreePort(t)
	if _, ok := env["METRICS_PORT"]; !ok {
		env["METRICS_PORT"] = strconv.Itoa(metricsPort)
	}
	cmd := appCmd(t, env, "serve")
	a := &app{
		cmd: cmd, out: &syncBuffer{}, exited: make(chan error, 1),
		base: fmt.Sprintf("http://127.0.0.1:%d", port), metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
	}
	cmd.Stdout, cmd.Stderr = a.out, a.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("app output:\n%s", a.out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := a.get(t, "/health"); code == http.StatusOK {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("app did not come up; output:\n%s", a.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *app) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(a.base + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// waitStatus polls path until it answers want and returns how long it took.
func (a *app) waitStatus(t *testing.T, path string, want int, within time.Duration) (time.Duration, map[string]any) {
	t.Helper()
	start := time.Now()
	for {
		code, body := a.get(t, path)
		if code == want {
			return time.Since(start), body
		}
		if time.Since(start) > within {
			t.Fatalf("%s answered %d (%v), want %d within %s", path, code, body, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCLIErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     string
	}{
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"migrate without subcommand", []string{"migrate"}, nil, 2, "migrate needs a subcommand"},
		{"migrate to without version", []string{"migrate", "to"}, nil, 2, "exactly one VERSION"},
		{"migrate to bad version", []string{"migrate", "to", "x1"}, nil, 2, `version "x1"`},
		{"migrate down bad version", []string{"migrate", "down", "-1"}, nil, 2, `version "-1"`},
		{"migrate up with a version", []string{"migrate", "up", "3"}, nil, 2, `unexpected arguments`},
		{"serve without database", []string{"serve"}, nil, 1, "DATABASE_URL"},
		{"bad port", []string{"serve"}, map[string]string{"HTTP_PORT": "99999"}, 1, "http.port (from env HTTP_PORT)"},
		{"bad APP_ENV", []string{"config"}, map[string]string{"APP_ENV": "qa"}, 1, `unknown environment "qa"`},
		{"secret not echoed", []string{"serve"}, map[string]string{"DATABASE_URL": "mysql://u:leak-canary@h/db"}, 1, "database.url (from env DATABASE_URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			cmd := appCmd(t, env, tt.args...)
			out, err := cmd.CombinedOutput()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output does not contain %q:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), "leak-canary") {
				t.Errorf("output shows a secret:\n%s", out)
			}
		})
	}
}

func TestConfigCommandShowsSourcesAndRedacts(t *testing.T) {
	cmd := appCmd(t, map[string]string{"DATABASE_URL": "postgres://u:pw-canary@db:5432/app", "HTTP_PORT": "9191"}, "config")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]struct{ Value, Source string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("config output is not JSON: %v\n%s", err, out)
	}
	checks := map[string][2]string{
		"http.port":         {"9191", "env HTTP_PORT"},
		"database.url":      {"[REDACTED]", "env DATABASE_URL"},
		"log.level":         {"warn", "config/test.json"},
		"readiness.timeout": {"1s", "default"},
		"app_env":           {"test", "env APP_ENV"},
	}
	for key, want := range checks {
		if g := got[key]; g.Value != want[0] || g.Source != want[1] {
			t.Errorf("%s = %+v, want value %q from %q", key, g, want[0], want[1])
		}
	}
	if strings.Contains(string(out), "pw-canary") {
		t.Fatalf("config output shows the secret:\n%s", out)
	}
}

// A .env typo is logged once as a warning naming the key it probably meant;
// the command still runs. When the configuration fails, the warning comes
// with the error, as there is no logger yet.
func TestDotEnvWarningsAreLogged(t *testing.T) {
	cmd := appCmd(t, map[string]string{}, "config")
	if err := os.WriteFile(cmd.Dir+"/.env", []byte("HTTP_PROT=9090\nPOSTGRES_PASSWORD=pw-canary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	logs := stderr.String()
	if n := strings.Count(logs, "did you mean HTTP_PORT?"); n != 1 {
		t.Errorf("the HTTP_PROT warning is logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "POSTGRES_PASSWORD: not a setting of the service, which ignores it") || strings.Contains(logs, "pw-canary") {
		t.Errorf("want a warning that POSTGRES_PASSWORD is ignored, without its value:\n%s", logs)
	}
	if !json.Valid(stdout.Bytes()) {
		t.Errorf("config output is not JSON:\n%s", stdout.String())
	}

	cmd = appCmd(t, map[string]string{"HTTP_PORT": "0"}, "config")
	if err := os.WriteFile(cmd.Dir+"/.env", []byte("HTTP_PROT=9090\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "http.port") || !strings.Contains(string(out), "did you mean HTTP_PORT?") {
		t.Errorf("err %v, want the error and the warning:\n%s", err, out)
	}
}

// TestIntegrationReadyFollowsPostgres: /ready is 200 with the database up and 503
// within 2 s of the container stopping, while /health stays 200.
func TestIntegrationReadyFollowsPostgres(t *testing.T) {
	pg := dbtest.Dedicated(t)
	a := startApp(t, map[string]string{"DATABASE_URL": pg.AdminURL})
	a.waitStatus(t, "/ready", http.StatusOK, 5*time.Second)

	stopTimeout := time.Duration(0)
	if err := pg.Container.Stop(t.Context(), &stopTimeout); err != nil {
		t.Fatal(err)
	}
	took, body := a.waitStatus(t, "/ready", http.StatusServiceUnavailable, 2*time.Second)
	t.Logf("/ready turned 503 %s after the container stopped: %v", took, body)
	checks, _ := body["checks"].(map[string]any)
	if body["status"] != "not ready" || checks["postgres"] == nil || checks["postgres"] == "" {
		t.Errorf("503 body = %v, want status \"not ready\" and a postgres error", body)
	}
	if code, _ := a.get(t, "/health"); code != http.StatusOK {
		t.Errorf("/health = %d with the database down, want 200", code)
	}
}

// TestIntegrationReadyChecksRedisWhenConfigured runs a real Redis next to Postgres.
func TestIntegrationReadyChecksRedisWhenConfigured(t *testing.T) {
	dockertest.Require(t)
	image := os.Getenv("REDIS_IMAGE")
	if image == "" {
		image = "redis:7-alpine"
	}
	redis, err := testcontainers.Run(t.Context(), image,
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(60*time.Second, wait.ForListeningPort("6379/tcp")))
	testcontainers.CleanupContainer(t, redis)
	if err != nil {
		t.Fatalf("start redis (%s): %v", image, err)
	}
	endpoint, err := redis.PortEndpoint(t.Context(), "6379/tcp", "redis")
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, map[string]string{
		"DATABASE_URL": dbtest.NewDatabase(t, true),
		"REDIS_URL":    endpoint,
	})
	a.waitStatus(t, "/ready", http.StatusOK, 5*time.Second)

	stopTimeout := time.Duration(0)
	if err := redis.Stop(t.Context(), &stopTimeout); err != nil {
		t.Fatal(err)
	}
	_, body := a.waitStatus(t, "/ready", http.StatusServiceUnavailable, 3*time.Second)
	checks, _ := body["checks"].(map[string]any)
	if checks["redis"] == nil || checks["postgres"] != nil {
		t.Errorf("checks = %v, want only redis failing", checks)
	}
}

// TestIntegrationGracefulShutdownOnSIGTERM: on SIGTERM /ready turns 503 at once while
// the server keeps answering through the drain delay, then the process
// exits 0.
func TestIntegrationGracefulShutdownOnSIGTERM(t *testing.T) {
	a := startApp(t, map[string]string{
		"DATABASE_URL":         dbtest.NewDatabase(t, true),
		"SHUTDOWN_DRAIN_DELAY": "3s",
		"LOG_LEVEL":            "info",
	})
	a.waitStatus(t, "/ready", http.StatusOK, 5*time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a.waitStatus(t, "/ready", http.StatusServiceUnavailable, time.Second)
	if code, _ := a.get(t, "/health"); code != http.StatusOK {
		t.Errorf("/health during drain = %d, want 200", code)
	}
	select {
	case err := <-a.exited:
		if err != nil {
			t.Fatalf("exit: %v; output:\n%s", err, a.out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("app did not exit after SIGTERM")
	}
	logs := a.out.String()
	for _, want := range []string{`"msg":"shutdown started: not ready, draining"`, `"msg":"shutdown complete"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// TestIntegrationRequestLogLine: one structured line per request, with a request id.
func TestIntegrationRequestLogLine(t *testing.T) {
	a := startApp(t, map[string]string{"DATABASE_URL": dbtest.NewDatabase(t, true), "LOG_LEVEL": "info"})
	req, _ := http.NewRequest(http.MethodGet, a.base+"/v1/notes/424242", nil)
	req.Header.Set("X-Request-Id", "trace-abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Request-Id") != "trace-abc-123" {
		t.Fatalf("status %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(a.out.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil || rec["request_id"] != "trace-abc-123" {
				continue
			}
			if rec["msg"] != "request" || rec["method"] != "GET" || rec["path"] != "/v1/notes/424242" ||
				rec["status"] != float64(404) || rec["duration_ms"] == nil {
				t.Fatalf("request log line = %v", rec)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no request log line with the request id:\n%s", a.out.String())
}

// The running service serves its metrics on metrics.port, apart from the
// API: the request just made is in the latency histogram under its route
// pattern, the pool and process series are there, and the API's port has
// no /metrics.
func TestIntegrationMetricsListener(t *testing.T) {
	a := startApp(t, map[string]string{"DATABASE_URL": dbtest.NewDatabase(t, true), "LOG_LEVEL": "info"})
	if !strings.Contains(a.out.String(), `"serves":"metrics"`) {
		t.Errorf("no log line of the metrics listener:\n%s", a.out.String())
	}
	if code, _ := a.get(t, "/v1/notes/7"); code != http.StatusNotFound {
		t.Fatalf("GET /v1/notes/7 = %d, want 404", code)
	}
	if code, _ := a.get(t, "/metrics"); code != http.StatusNotFound {
		t.Errorf("the API's port answers /metrics with %d, want 404: the proxy routes that port", code)
	}
	resp, err := http.Get(a.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", a.metrics, resp.Status, err)
	}
	for _, want := range []string{
		`http_request_duration_seconds_count{code="404",route="GET /v1/notes/{id}"} 1`,
		"pgxpool_max_conns 10",
		"http_requests_in_flight 0",
		"process_resident_memory_bytes ",
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the metrics lack %q", want)
		}
	}
}

// METRICS_PORT=0 turns the metrics listener off; the service runs as before.
func TestIntegrationMetricsOff(t *testing.T) {
	a := startApp(t, map[string]string{"DATABASE_URL": dbtest.NewDatabase(t, true), "METRICS_PORT": "0", "LOG_LEVEL": "info"})
	if code, _ := a.get(t, "/health"); code != http.StatusOK {
		t.Fatalf("/health = %d", code)
	}
	if strings.Contains(a.out.String(), `"serves":"metrics"`) {
		t.Errorf("METRICS_PORT=0, yet the log says a metrics listener started:\n%s", a.out.String())
	}
}

// TestIntegrationVersionReportsSchema: the running service says which
// schema it expects and which it finds, before and after migrating.
func TestIntegrationVersionReportsSchema(t *testing.T) {
	latest, err := migrate.Latest(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	url := dbtest.NewDatabase(t, false)
	a := startApp(t, map[string]string{"DATABASE_URL": url})
	schemaOf := func() map[string]any {
		t.Helper()
		code, body := a.get(t, "/version")
		s, _ := body["schema"].(map[string]any)
		if code != 200 || s == nil {
			t.Fatalf("/version = %d %v", code, body)
		}
		return s
	}
	if s := schemaOf(); s["expected"] != float64(latest) || s["database"] != float64(0) {
		t.Errorf("before migrating: schema %v, want expected %d, database 0", s, latest)
	}
	if out, err := appCmd(t, map[string]string{"DATABASE_URL": url}, "migrate", "up").CombinedOutput(); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	if s := schemaOf(); s["expected"] != float64(latest) || s["database"] != float64(latest) {
		t.Errorf("after migrating: schema %v, want %d both", s, latest)
	}
}

// TestIntegrationConcurrentMigrateUp: five `app migrate up` processes at once on one
// database all exit 0, and each migration is applied exactly once.
func TestIntegrationConcurrentMigrateUp(t *testing.T) {
	url := dbtest.NewDatabase(t, false)
	const runs = 5
	var wg sync.WaitGroup
	outputs := make([]string, runs)
	errs := make([]error, runs)
	for i := range runs {
		wg.Go(func() {
			out, err := appCmd(t, map[string]string{"DATABASE_URL": url}, "migrate", "up").CombinedOutput()
			outputs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	applied := 0
	for i := range runs {
		if errs[i] != nil {
			t.Errorf("run %d: %v\n%s", i, errs[i], outputs[i])
		}
		applied += strings.Count(outputs[i], "up   ")
	}
	files, err := migrations.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".sql") {
			want++
		}
	}
	if applied != want {
		t.Errorf("the runs applied %d migrations in all, want %d (each exactly once)", applied, want)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, distinct int
	err = conn.QueryRow(t.Context(),
		`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != want || distinct != want {
		t.Errorf("goose_db_version has %d rows (%d distinct versions), want %d", rows, distinct, want)
	}
}

// TestIntegrationMigrateCommands drives up, status, down and to through the CLI.
func TestIntegrationMigrateCommands(t *testing.T) {
	url := dbtest.NewDatabase(t, false)
	run := func(args ...string) string {
		t.Helper()
		out, err := appCmd(t, map[string]string{"DATABASE_URL": url}, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("app %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("migrate", "status"); !strings.Contains(out, "pending  00001_create_notes.sql") {
		t.Errorf("status before up:\n%s", out)
	}
	if out := run("migrate", "up"); !strings.Contains(out, "database at version 2") {
		t.Errorf("up:\n%s", out)
	}
	if out := run("migrate", "up"); !strings.Contains(out, "nothing to do") {
		t.Errorf("second up:\n%s", out)
	}
	if out := run("migrate", "down"); !strings.Contains(out, "database at version 1") {
		t.Errorf("down:\n%s", out)
	}
	if out := run("migrate", "to", "0"); !strings.Contains(out, "database at version 0") {
		t.Errorf("to 0:\n%s", out)
	}
	if out := run("migrate", "to", "2"); !strings.Contains(out, "database at version 2") {
		t.Errorf("to 2:\n%s", out)
	}
	if out := run("migrate", "down", "1"); !strings.Contains(out, "database at version 1") {
		t.Errorf("down 1:\n%s", out)
	}
	out, err := appCmd(t, map[string]string{"DATABASE_URL": url}, "migrate", "down", "2").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the database is at version 1, below it") {
		t.Errorf("down 2 at version 1 must refuse: err %v\n%s", err, out)
	}
	out, err = appCmd(t, map[string]string{"DATABASE_URL": url}, "migrate", "to", "7").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "migrate to 7: no such migration") {
		t.Errorf("to 7: err %v\n%s", err, out)
	}
}

// TestHealthcheckCommand runs `app healthcheck` (the image's HEALTHCHECK)
// against a stand-in /health on each kind of listen address.
func TestHealthcheckCommand(t *testing.T) {
	tests := []struct {
		name, listen, host string
		status             int
		wantOK             bool
	}{
		{"all interfaces probes loopback", "127.0.0.1:0", "", 200, true},
		{"unspecified IPv4", "127.0.0.1:0", "0.0.0.0", 200, true},
		{"explicit IPv4", "127.0.0.1:0", "127.0.0.1", 200, true},
		{"IPv6 loopback in brackets", "[::1]:0", "[::1]", 200, true},
		{"unhealthy", "127.0.0.1:0", "127.0.0.1", 503, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", tt.listen)
			if err != nil {
				// plain skip: no Docker here; a machine without IPv6 loopback.
				t.Skipf("cannot listen on %s here: %v", tt.listen, err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health" {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				w.WriteHeader(tt.status)
			}), ReadHeaderTimeout: time.Second}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })

			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			out, err := appCmd(t, map[string]string{"HTTP_HOST": tt.host, "HTTP_PORT": port}, "healthcheck").CombinedOutput()
			if (err == nil) != tt.wantOK {
				t.Fatalf("healthcheck: err %v, want ok=%v\n%s", err, tt.wantOK, out)
			}
		})
	}
	// Nothing listening at all.
	out, err := appCmd(t, map[string]string{"HTTP_PORT": strconv.Itoa(dockertest.FreePort(t))}, "healthcheck").CombinedOutput()
	if err == nil {
		t.Fatalf("healthcheck with no server succeeded:\n%s", out)
	}
}
