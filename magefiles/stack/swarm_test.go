package stack

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// swarmOverride holds the test-only differences from the production file.
// There is no IPVS on the test machines, so neither the routing mesh nor
// VIPs work: dnsrr, and the app's port published in host mode, which one
// node cannot hold for two tasks at once, hence stop-first. It never touches
// failure_action or the health check: those are what the test checks.
// Every file carries the production file's version: docker stack deploy
// wants them equal.
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
// sets it), and skips on an engine already in a Swarm rather than touch it.
func TestIntegrationProductionStackRollsBack(t *testing.T) {
	dockertest.Require(t)
	if os.Getenv("TEST_SWARM") != "1" {
		t.Skip("set TEST_SWARM=1 to let this test make the engine a single-node Swarm for a minute (it leaves it afterwards)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		requireOrSkip(t, "needs the docker CLI for docker stack deploy: "+err.Error())
	}
	ctx := t.Context()
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
		t.Skipf("the engine is in a Swarm already (%s): this test only uses a Swarm of its own", state)
	}
	hadGWBridge := docker(t, nil, "", "network", "ls", "-q", "--filter", "name=^docker_gwbridge$") != ""
	docker(t, nil, "", "swarm", "init", "--advertise-addr", "127.0.0.1")
	t.Cleanup(func() {
		cleanup(t, "swarm", "leave", "--force")
		if !hadGWBridge {
			cleanup(t, "network", "rm", "docker_gwbridge")
		}
	})

	u := uniqueID(t)
	name := "stacktest" + u
	repository := "localhost/stack-test"
	tag := "v0.0.0-test." + u
	buildAppImage(t, cli, repository, tag)

	password := "pw" + uniqueID(t)
	docker(t, nil, password, "secret", "create", "postgres_password", "-")
	docker(t, nil, "postgres://app:"+password+"@postgres:5432/app?sslmode=disable", "secret", "create", "database_url", "-")

	port := freePort(t)
	env := []string{
		"REGISTRY=localhost", "IMAGE_NAME=stack-test", "IMAGE_TAG=" + tag,
		"HTTP_PORT=" + strconv.Itoa(port), "APP_ENV=production",
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
	deploy := func(env []string, files ...string) {
		args := []string{"stack", "deploy", "--resolve-image", "never"}
		for _, f := range append([]string{prodFile, override}, files...) {
			args = append(args, "-c", f)
		}
		docker(t, env, "", append(args, name)...)
	}

	deploy(env)
	t.Cleanup(func() { removeStack(t, name) })
	ready := fmt.Sprintf("http://127.0.0.1:%d/ready", port)
	waitReady(t, ready, 2*time.Minute)

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
			before := inspect(t, cli, service)
			deploy(bad.env, bad.files...)
			after := waitUpdate(t, cli, service, before, 3*time.Minute)
			if after.UpdateStatus.State != swarm.UpdateStateRollbackCompleted {
				t.Fatalf("update ended %s (%s), want %s", after.UpdateStatus.State, after.UpdateStatus.Message, swarm.UpdateStateRollbackCompleted)
			}
			if got, want := after.Spec.TaskTemplate.ContainerSpec, before.Spec.TaskTemplate.ContainerSpec; !slices.Equal(got.Env, want.Env) || fmt.Sprint(got.Healthcheck) != fmt.Sprint(want.Healthcheck) {
				t.Errorf("after the rollback the spec is env %v healthcheck %v, want the previous env %v healthcheck %v", got.Env, got.Healthcheck, want.Env, want.Healthcheck)
			}
			waitReady(t, ready, time.Minute)
		})
	}
}

// waitUpdate waits for the update that starts after before to end, and
// returns the service then.
func waitUpdate(t *testing.T, cli *client.Client, service string, before swarm.Service, timeout time.Duration) swarm.Service {
	t.Helper()
	var started time.Time
	if before.UpdateStatus != nil && before.UpdateStatus.StartedAt != nil {
		started = *before.UpdateStatus.StartedAt
	}
	deadline := time.Now().Add(timeout)
	for {
		s := inspect(t, cli, service)
		if st := s.UpdateStatus; st != nil && st.StartedAt != nil && st.StartedAt.After(started) {
			switch st.State {
			case swarm.UpdateStateCompleted, swarm.UpdateStateRollbackCompleted,
				swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no update ended within %s (status %+v)", service, timeout, s.UpdateStatus)
		}
		time.Sleep(time.Second)
	}
}

func inspect(t *testing.T, cli *client.Client, service string) swarm.Service {
	t.Helper()
	r, err := cli.ServiceInspect(context.Background(), service, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Service
}

func waitReady(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: not ready within %s: %v", url, timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// removeStack removes the stack and waits for its containers to go, then
// removes its volumes (docker stack rm leaves them).
func removeStack(t *testing.T, name string) {
	t.Helper()
	cleanup(t, "stack", "rm", name)
	label := "label=com.docker.stack.namespace=" + name
	deadline := time.Now().Add(time.Minute)
	for cleanup(t, "ps", "-aq", "--filter", label) != "" {
		if time.Now().After(deadline) {
			t.Errorf("cleanup: containers of stack %s still there after a minute", name)
			break
		}
		time.Sleep(time.Second)
	}
	if vols := strings.Fields(cleanup(t, "volume", "ls", "-q", "--filter", label)); len(vols) > 0 {
		cleanup(t, append([]string{"volume", "rm"}, vols...)...)
	}
}

func buildAppImage(t *testing.T, cli *client.Client, repository, tag string) {
	t.Helper()
	dir := t.TempDir()
	if err := dockerimage.CopyRepo(t.Context(), "../..", dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b, err := dockerimage.BuildImage(t.Context(), runner.Exec{Quiet: true, Stderr: &out}, cli, dockerimage.Plan{
		Dir: dir, Repository: repository, Tags: []string{tag}, Out: &out,
		Stamp: dockerimage.Stamp{Version: tag, Commit: "test", Title: "stack-test"},
	})
	if err != nil {
		t.Fatalf("build the app image: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { cleanup(t, "image", "rm", "--force", b.ID) })
}

// docker runs the docker CLI with env added to the process's environment
// and stdin as its input, and returns its trimmed output; a failure fails
// the test with the output.
func docker(t *testing.T, env []string, stdin string, args ...string) string {
	t.Helper()
	out, err := runDocker(env, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cleanup is docker for t.Cleanup: a failure is reported, and the other
// clean-ups still run.
func cleanup(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runDocker(nil, "", args...)
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	return out
}

func runDocker(env []string, stdin string, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func requireOrSkip(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("TEST_REQUIRE_DOCKER") == "1" {
		t.Fatal(reason + " (TEST_REQUIRE_DOCKER=1)")
	}
	t.Skip(reason)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func uniqueID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
