package stack

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// swarmOverride holds the test-only differences from the production file.
// There is no IPVS on the test machines, so neither the routing mesh nor
// VIPs work: dnsrr; and no proxy runs here, so the test reaches the app on
// a port published in host mode (production publishes none); one node
// cannot hold a host-mode port for two tasks at once, hence stop-first. It never touches
// failure_action or the health check: those are what the test checks. Every
// file carries the production file's version: docker stack deploy wants them
// equal.
const swarmOverride = `
version: "3.9"
services:
  app:
    ports:
      - target: 8080
        published: ${HTTP_PORT}
        mode: host
    deploy:
      endpoint_mode: dnsrr
      replicas: 1
      update_config:
        delay: 1s
        monitor: 15s
        order: stop-first
      rollback_config:
        delay: 1s
        order: stop-first
  postgres:
    deploy:
      endpoint_mode: dnsrr
`

// badHealthOverride is a release whose health check never passes (checked
// often, so the test does not wait 40 s for it).
const badHealthOverride = `
version: "3.9"
services:
  app:
    healthcheck:
      test: ["CMD", "/app", "no-such-command"]
      interval: 2s
      start_period: 1s
      retries: 2
`

// docker-compose.prod.yml on a real single-node Swarm: it deploys and
// serves, and an update whose tasks crash or never turn healthy is rolled
// back by Swarm itself, leaving the previous release serving.
//
// The test turns the engine into a Swarm of its own for a minute and leaves
// it afterwards, so it runs only when TEST_SWARM=1 says that is fine (CI
// sets it). On an engine already in a Swarm it does not run rather than
// touch it: a skip, or under TEST_REQUIRE_DOCKER=1 a failure, since CI's
// engine must be free for it. Its waits stop 90 s before go test's deadline,
// so its clean-up always runs.
func TestE2EProductionStackRollsBack(t *testing.T) {
	dockertest.Require(t)
	if os.Getenv("TEST_SWARM") != "1" {
		// plain skip: TEST_SWARM unset is the caller's explicit opt-out (the
		// test changes the engine's Swarm state), not Docker missing; CI opts in.
		t.Skip("set TEST_SWARM=1 to let this test make the engine a single-node Swarm for a minute (it leaves it afterwards)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		dockertest.Missing(t, "needs the docker CLI for docker stack deploy: "+err.Error())
	}
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-90*time.Second))
		t.Cleanup(cancel)
	}
	cli, err := dockerimage.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if state := info.Info.Swarm.LocalNodeState; state != swarm.LocalNodeStateInactive {
		dockertest.Missing(t, fmt.Sprintf("the engine is in a Swarm already (%s): this test only uses a Swarm of its own", state))
	}
	gwBridge := networkExists(t, cli, "docker_gwbridge")
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, err := cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: leave the Swarm: %v", err)
		}
		// swarm init makes this network and leaving keeps it.
		if !gwBridge {
			if _, err := cli.NetworkRemove(ctx, "docker_gwbridge", client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Logf("cleanup: remove docker_gwbridge: %v", err)
			}
		}
	})
	if _, err := cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		t.Fatalf("swarm init: %v", err)
	}
	// The proxy's network, which the app joins (no proxy runs: the test
	// reaches the app on a published port); removed with the Swarm.
	if _, err := cli.NetworkCreate(ctx, ProxyNetwork, client.NetworkCreateOptions{Driver: "overlay", Attachable: true}); err != nil {
		t.Fatalf("create %s: %v", ProxyNetwork, err)
	}

	u := dockertest.Unique(t)
	name := "stacktest" + u
	tag := "v0.0.0-test." + u
	buildAppImage(t, ctx, cli, "localhost/stack-test", tag)

	password := "pw" + dockertest.Unique(t)
	for secret, value := range map[string]string{
		"postgres_password": password,
		"database_url":      "postgres://app:" + password + "@postgres:5432/app?sslmode=disable",
	} {
		spec := swarm.SecretSpec{Annotations: swarm.Annotations{Name: secret}, Data: []byte(value)}
		if _, err := cli.SecretCreate(ctx, client.SecretCreateOptions{Spec: spec}); err != nil {
			t.Fatalf("create secret %s: %v", secret, err)
		}
	}

	port := dockertest.FreePort(t)
	env := []string{
		"REGISTRY=localhost", "IMAGE_NAME=stack-test", "IMAGE_TAG=" + tag,
		"HTTP_PORT=" + strconv.Itoa(port), "APP_ENV=production", "APP_HOST=stacktest.example.com", "ROUTER=" + name,
		"POSTGRES_IMAGE=" + cmp.Or(os.Getenv("POSTGRES_IMAGE"), "postgres:16-alpine"),
	}
	dir := t.TempDir()
	override := filepath.Join(dir, "swarm-test.yml")
	badHealth := filepath.Join(dir, "bad-health.yml")
	for f, s := range map[string]string{override: swarmOverride, badHealth: badHealthOverride} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deploy := func(t *testing.T, env []string, files ...string) {
		t.Helper()
		args := []string{"stack", "deploy", "--resolve-image", "never"}
		for _, f := range append([]string{"../../" + ProductionFile, override}, files...) {
			args = append(args, "-c", f)
		}
		if _, err := runner.Output(ctx, runner.Command("docker", append(args, name)...).WithEnv(env...)); err != nil {
			t.Fatal(err)
		}
	}

	// Registered before the deploy: a deploy that fails half-way has made
	// services and a volume already.
	t.Cleanup(func() { dockertest.RemoveStack(t, cli, name) })
	deploy(t, env)
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", port)
	waitReady(t, ctx, ready, 2*time.Minute)

	service := name + "_app"
	raw, err := cli.ServiceInspect(ctx, service, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Raw, []byte(password)) {
		t.Error("docker service inspect shows the database password")
	}

	for _, bad := range []struct {
		name  string
		env   []string
		files []string
	}{
		{"a release that crashes", append(slices.Clone(env), "APP_ENV=no-such-env"), nil},
		{"a release that never turns healthy", env, []string{badHealth}},
	} {
		t.Run(bad.name, func(t *testing.T) {
			before := inspect(t, ctx, cli, service)
			deploy(t, bad.env, bad.files...)
			after := waitUpdate(t, ctx, cli, service, before, 2*time.Minute)
			if after.UpdateStatus.State != swarm.UpdateStateRollbackCompleted {
				t.Fatalf("update ended %s (%s), want %s", after.UpdateStatus.State, after.UpdateStatus.Message, swarm.UpdateStateRollbackCompleted)
			}
			if got, want := after.Spec.TaskTemplate.ContainerSpec, before.Spec.TaskTemplate.ContainerSpec; !slices.Equal(got.Env, want.Env) || fmt.Sprint(got.Healthcheck) != fmt.Sprint(want.Healthcheck) {
				t.Errorf("after the rollback the spec is env %v healthcheck %v, want the previous env %v healthcheck %v", got.Env, got.Healthcheck, want.Env, want.Healthcheck)
			}
			waitReady(t, ctx, ready, time.Minute)
		})
	}
}

// waitUpdate waits for the update that starts after before to end, and
// returns the service then.
func waitUpdate(t *testing.T, ctx context.Context, cli *client.Client, service string, before swarm.Service, timeout time.Duration) swarm.Service {
	t.Helper()
	var started time.Time
	if before.UpdateStatus != nil && before.UpdateStatus.StartedAt != nil {
		started = *before.UpdateStatus.StartedAt
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		s := inspect(t, ctx, cli, service)
		if st := s.UpdateStatus; st != nil && st.StartedAt != nil && st.StartedAt.After(started) {
			switch st.State {
			case swarm.UpdateStateCompleted, swarm.UpdateStateRollbackCompleted,
				swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
				return s
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no update ended within %s (status %+v)", service, timeout, s.UpdateStatus)
		case <-time.After(time.Second):
		}
	}
}

func inspect(t *testing.T, ctx context.Context, cli *client.Client, service string) swarm.Service {
	t.Helper()
	r, err := cli.ServiceInspect(ctx, service, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", service, err)
	}
	return r.Service
}

func waitReady(t *testing.T, ctx context.Context, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := http.Client{Timeout: 2 * time.Second}
	for {
		err := func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %s", resp.Status)
			}
			return nil
		}()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: not ready within %s: %v", url, timeout, err)
		case <-time.After(time.Second):
		}
	}
}

// cleanupContext bounds a clean-up, which runs after the test's own
// context is gone.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func networkExists(t *testing.T, cli *client.Client, name string) bool {
	t.Helper()
	ns, err := cli.NetworkList(t.Context(), client.NetworkListOptions{Filters: client.Filters{}.Add("name", "^"+name+"$")})
	if err != nil {
		t.Fatal(err)
	}
	return len(ns.Items) > 0
}

func buildAppImage(t *testing.T, ctx context.Context, cli *client.Client, repository, tag string) {
	t.Helper()
	dir := t.TempDir()
	if err := dockerimage.CopyRepo(ctx, "../..", dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b, err := dockerimage.BuildImage(ctx, runner.Exec{Quiet: true, Stderr: &out}, cli, dockerimage.Plan{
		Dir: dir, Repository: repository, Tags: []string{tag}, Out: &out,
		Stamp: dockerimage.Stamp{Version: tag, Commit: "test", Title: "stack-test"},
	})
	if err != nil {
		t.Fatalf("build the app image: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, err := cli.ImageRemove(ctx, b.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove image %s: %v", b.ID, err)
		}
	})
}
