package deploy_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// poolOfOne gives the app a database pool of one connection.
const poolOfOne = `version: "3.9"
services:
  app:
    environment:
      DATABASE_MAX_CONNS: "1"
`

// startLoadAt is the suite's load client at rate GETs per second.
func (f *fixture) startLoadAt(t *testing.T, stack string, rate int) *Load {
	t.Helper()
	ctx := t.Context()
	r, err := f.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             "e2e-load-" + unique(),
		Config:           &container.Config{Image: f.load, Cmd: []string{"-url", "http://tasks.app:8080", "-rate", strconv.Itoa(rate), "-slow", "2"}},
		HostConfig:       &container.HostConfig{},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{stack + "_internal": {}}},
	})
	if err != nil {
		t.Fatalf("create the load client: %v", err)
	}
	t.Cleanup(func() {
		_, _ = f.cli.ContainerRemove(context.Background(), r.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := f.cli.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start the load client: %v", err)
	}
	return &Load{cli: f.cli, id: r.ID}
}

// TestE2ETopStarved runs deploy:top on the app under load, starved two
// ways, and checks that it names the right signal with the scaling guide's
// advice: a CPU limit of 0.02 (CPU above 70% of the limit: add replicas,
// or more CPU), then a pool of one connection while every query waits on
// a table lock (the pool exhausted: raise it or add replicas).
func TestE2ETopStarved(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup

	t.Run("CPU", func(t *testing.T) {
		stack := "e2et" + unique()[:4]
		env := subStack(t, f, envSpec{Name: "e2e", Stack: stack,
			Variables: map[string]string{"APP_CPUS": "0.02", "APP_CPUS_RESERVED": "0.02"}})
		expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
		load := f.startLoadAt(t, stack, 300)
		time.Sleep(5 * time.Second)
		svg := filepath.Join(f.tmp, stack+"-top.svg")
		out := expect(t, f, env, 0, "deploy:top", "e2e", "-window=10s", "-svg="+svg)
		t.Logf("deploy:top under a CPU limit of 0.02:\n%s", out)
		for _, want := range []string{"CPU > 70%", "of 0.02", "add replicas", "raise APP_CPUS"} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy:top does not say %q", want)
			}
		}
		if strings.Contains(out, "pool exhausted") {
			t.Error("deploy:top calls the pool exhausted, which it is not here")
		}
		checkSVG(t, svg)

		// -watch goes on until Ctrl-C, a table a round.
		cmd := f.command(t.Context(), env, nil, "deploy:top", "e2e", "-watch", "-window=5s")
		var watch lockedBuffer
		cmd.Stdout, cmd.Stderr = &watch, &watch
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for strings.Count(watch.String(), "SERVICE  TASK") < 2 && time.Now().Before(deadline) {
			time.Sleep(time.Second)
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		if n := strings.Count(watch.String(), "SERVICE  TASK"); n < 2 || !strings.Contains(watch.String(), "CPU (last minute)") {
			t.Errorf("deploy:top -watch printed %d tables:\n%s", n, watch.String())
		}
		load.Stop(t)
	})

	t.Run("pool", func(t *testing.T) {
		stack := "e2eq" + unique()[:4]
		pool := filepath.Join(f.tmp, stack+"-pool.yml")
		if err := os.WriteFile(pool, []byte(poolOfOne), 0o644); err != nil {
			t.Fatal(err)
		}
		env := subStack(t, f, envSpec{Name: "e2e", Stack: stack, Files: []string{pool}})
		expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
		load := f.startLoadAt(t, stack, 40)
		time.Sleep(3 * time.Second)
		// Slow queries: every read of notes waits on this lock, holding
		// the pool's one connection meanwhile.
		locked := make(chan string, 1)
		go func() {
			locked <- f.psql(t, stack, "BEGIN; LOCK TABLE notes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(25); COMMIT;")
		}()
		time.Sleep(2 * time.Second)
		out := expect(t, f, env, 0, "deploy:top", "e2e", "-window=10s")
		t.Logf("deploy:top with a pool of 1 under slow queries:\n%s", out)
		for _, want := range []string{"pool exhausted", "all 1 connections in use", "raise the pool (database.max_conns, DATABASE_MAX_CONNS", "or add replicas"} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy:top does not say %q", want)
			}
		}
		if strings.Contains(out, "CPU > 70%") {
			t.Error("deploy:top calls the CPU high, which it is not here")
		}
		<-locked
		load.Stop(t)
	})
}

// subStack is newStack for a subtest, whose name holds a slash.
func subStack(t *testing.T, f *fixture, e envSpec) string {
	t.Helper()
	f.createSecrets(t, e.Stack, "pw"+unique())
	t.Cleanup(func() { f.removeStack(t, e.Stack) })
	return f.writeEnv(strings.ReplaceAll(t.Name(), "/", "-"), e)
}

// checkSVG checks that path is an SVG with lines plotted.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("-svg wrote no file: %v", err)
	}
	defer fh.Close()
	dec := xml.NewDecoder(fh)
	lines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines == 0 {
		t.Errorf("%s plots nothing", path)
	}
}
