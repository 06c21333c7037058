package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// The local stack end to end, in a copy of this repository under a compose
// project and loopback ports of its own: Up serves /ready with Postgres and
// Redis, a note made through the API survives Down and Up in the volume,
// Watch serves a changed source file while Postgres and Redis keep running,
// and Down with volumes leaves no container, volume, network or image of the
// project behind.
//
// It takes a minute or two, so it runs only with TEST_COMPOSE=1 (CI sets it),
// and needs Docker Compose v2.
func TestIntegrationDevStack(t *testing.T) {
	dockertest.Require(t)
	if os.Getenv("TEST_COMPOSE") != "1" {
		// plain skip: an explicit opt-in, like TEST_SWARM; a missing Compose goes through Missing below.
		t.Skip("set TEST_COMPOSE=1 to run the local stack end to end with docker compose (a minute or two)")
	}
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Minute))
		t.Cleanup(cancel)
	}
	if err := CheckCompose(ctx); err != nil {
		dockertest.Missing(t, err.Error())
	}
	cli, err := dockerimage.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	_, goarch, err := dockerimage.EngineTarget(ctx, cli)
	cli.Close()
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := dockerimage.CopyRepo(ctx, filepath.Join("..", ".."), dir); err != nil {
		t.Fatal(err)
	}
	project := "devtest" + dockertest.Unique(t)
	var env []string
	for _, name := range []string{"HTTP_PORT", "POSTGRES_PORT", "REDIS_PORT"} {
		env = append(env, fmt.Sprintf("%s=%d", name, dockertest.FreePort(t)))
	}
	// Compose's output is kept and shown only when the test fails.
	var log bytes.Buffer
	s := Stack{
		Dir: dir, Project: project, Env: env, GOARCH: goarch,
		Stamp: dockerimage.Stamp{Version: "dev"},
		Run:   runner.Exec{Stdout: &log, Stderr: &log}, Out: &log,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose output:\n%s", log.String())
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Down(cctx, true); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})

	// Up: healthy, ready with Postgres and Redis.
	start := time.Now()
	url, err := s.Up(ctx)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("dev:up took %s", time.Since(start).Round(100*time.Millisecond))
	if code, body := get(t, url+"/ready"); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Fatalf("GET /ready = %d %s", code, body)
	}
	// Readiness checks Redis in this stack: frozen, it makes /ready fail.
	mustRun(t, ctx, s, "pause", "redis")
	code, body := get(t, url+"/ready")
	mustRun(t, ctx, s, "unpause", "redis")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Fatalf("GET /ready with Redis paused = %d %s, want 503 naming redis", code, body)
	}

	// A note survives Down and Up: it is in the volume.
	resp, err := http.Post(url+"/v1/notes", "application/json", strings.NewReader(`{"title":"kept","body":"in the volume"}`))
	if err != nil {
		t.Fatal(err)
	}
	var note struct{ ID int64 }
	err = json.NewDecoder(resp.Body).Decode(&note)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil || note.ID == 0 {
		t.Fatalf("POST /v1/notes = %d, %v", resp.StatusCode, err)
	}
	if err := s.Down(ctx, false); err != nil {
		t.Fatalf("down: %v", err)
	}
	if url, err = s.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if code, body := get(t, fmt.Sprintf("%s/v1/notes/%d", url, note.ID)); code != http.StatusOK || !strings.Contains(body, `"title":"kept"`) {
		t.Fatalf("GET the note after down and up = %d %s", code, body)
	}

	// Watch serves a changed source file; Postgres and Redis keep running.
	before := containerIDs(t, ctx, s)
	wctx, stop := context.WithCancel(ctx)
	watched := make(chan error, 1)
	reloads := make(chan Reload, 4)
	go func() { watched <- s.Watch(wctx, WatchOptions{Reloaded: func(r Reload) { reloads <- r }}) }()
	var watchErr error
	stopWatching := sync.OnceFunc(func() { stop(); watchErr = <-watched })
	defer stopWatching()
	time.Sleep(time.Second) // the first snapshot
	version := "watched-" + dockertest.Unique(t)
	saved := time.Now()
	if err := WriteVersionMarker(dir, version); err != nil {
		t.Fatal(err)
	}
	served, cancel := context.WithTimeout(ctx, 3*time.Minute)
	err = WaitForVersion(served, url, version)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dev:watch: saved to served in %s", time.Since(saved).Round(100*time.Millisecond))
	if r := <-reloads; r.Err != nil || len(r.Changed) != 1 {
		t.Fatalf("reload: %+v", r)
	}
	after := containerIDs(t, ctx, s)
	for _, svc := range []string{"postgres", "redis"} {
		if before[svc] == "" || before[svc] != after[svc] {
			t.Errorf("%s was recreated by the reload: %s -> %s", svc, before[svc], after[svc])
		}
	}
	if before["app"] == after["app"] {
		t.Error("the app container was not recreated")
	}
	stopWatching()
	if watchErr != nil {
		t.Fatalf("watch: %v", watchErr)
	}

	// An app that does not come up is named, with its last log lines.
	broken := s
	broken.Env = append(slices.Clone(s.Env), "LOG_LEVEL=bogus")
	var brokenOut bytes.Buffer
	broken.Out = &brokenOut
	err = broken.Reload(ctx, false)
	if err == nil || !strings.Contains(err.Error(), "not up: app (exited with 1)") {
		t.Fatalf("reload of an app that cannot start: %v", err)
	}
	if !strings.Contains(brokenOut.String(), "last log lines of app") || !strings.Contains(brokenOut.String(), `"bogus" is not a log level`) {
		t.Fatalf("the app's last log lines are not shown:\n%s", brokenOut.String())
	}

	// Down with volumes leaves nothing of the project.
	if err := s.Down(ctx, true); err != nil {
		t.Fatalf("down -volumes: %v", err)
	}
	label := "label=com.docker.compose.project=" + project
	for _, what := range [][]string{
		{"ps", "--all", "--quiet", "--filter", label},
		{"volume", "ls", "--quiet", "--filter", label},
		{"network", "ls", "--quiet", "--filter", label},
		{"image", "ls", "--quiet", "--filter", label},
		{"image", "ls", "--quiet", project + "-*"},
	} {
		out, err := runner.Output(ctx, runner.Command("docker", what...))
		if err != nil {
			t.Fatal(err)
		}
		if out != "" {
			t.Errorf("docker %s: left behind:\n%s", strings.Join(what, " "), out)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func mustRun(t *testing.T, ctx context.Context, s Stack, args ...string) {
	t.Helper()
	if err := s.Run.Run(ctx, s.Compose(args...)); err != nil {
		t.Fatal(err)
	}
}

// containerIDs are the IDs of the stack's running containers by service.
func containerIDs(t *testing.T, ctx context.Context, s Stack) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, svc := range []string{"app", "postgres", "redis"} {
		out, err := runner.Output(ctx, s.Compose("ps", "--quiet", svc))
		if err != nil {
			t.Fatal(err)
		}
		ids[svc] = out
	}
	return ids
}
