package docs_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
)

// The images the local environment names by default, and the variables
// that name others (deploy/environments.yml). Where they cannot be pulled
// (CI here), the variables name local stand-ins, which the test pushes
// into the environment's registry: deploy:to and deploy:proxy run images
// by their registry digest, as production does.
var laptopImages = []struct{ variable, repo string }{
	{"POSTGRES_IMAGE", "postgres"},
	{"TRAEFIK_IMAGE", "traefik"},
	{"PEBBLE_IMAGE", "pebble"},
}

// appRunning is deploy:status's row for the app with both tasks running.
var appRunning = regexp.MustCompile(`(?m)^app\s+\S+\s+sha256:\S+\s+2/2\s`)

// TestE2EReadmeLaptopPath runs the README's path from a clone to a deploy
// on the laptop as written, in a fresh copy of the checkout: deploy:init
// makes this engine a Swarm with a registry, deploy:proxy puts Traefik and
// pebble in front, deploy:to builds HEAD, pushes and deploys it, and the
// README's curl line gets /ready through the proxy over HTTPS. Then the
// README's undo block runs, and nothing of it may be left.
func TestE2EReadmeLaptopPath(t *testing.T) {
	dockertest.Require(t)
	if os.Getenv("TEST_SWARM") != "1" {
		// plain skip: TEST_SWARM unset is the caller's explicit opt-out (the
		// test changes the engine's Swarm state), not Docker missing.
		t.Skip("set TEST_SWARM=1 to let this test make the engine a single-node Swarm for a few minutes (it leaves it afterwards)")
	}
	for _, tool := range []string{"docker", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			dockertest.Missing(t, "the README's laptop path uses "+tool+": "+err.Error())
		}
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	info, err := cli.Info(t.Context(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if state := info.Info.Swarm.LocalNodeState; state != swarm.LocalNodeStateInactive {
		dockertest.Missing(t, "the engine is in a Swarm already ("+string(state)+"): this test makes one of its own, as the README's newcomer does")
	}

	lines := readmeBlock(t)
	// The steps this test knows how to stand in for (the clone, the stand-in
	// images, the cache directory): a README that says otherwise needs it
	// updated.
	want := []string{"go tool mage deploy:init local", "go tool mage deploy:proxy local", "go tool mage deploy:to local", "go tool mage deploy:status local"}
	if got := commandsIn(lines, "go tool mage"); !slices.Equal(got, want) || !strings.HasPrefix(lines[0], "git clone ") {
		t.Fatalf("the README's laptop path is %q: this test runs a clone, then %q, then curl; update it with the README", lines, want)
	}
	dir := checkout(t, t.TempDir(), "service-template")
	cache := t.TempDir()
	env := environ([]string{"DEPLOY_HOST", "SERVICE_TEMPLATE_CACHE"}, "SERVICE_TEMPLATE_CACHE="+cache)
	undo := undoBlock(t)
	t.Cleanup(func() { runUndo(t, cli, undo, env) })

	for _, line := range lines[1:] {
		if strings.HasPrefix(line, "curl ") {
			line = strings.ReplaceAll(line, "~/.cache/service-template", cache)
			line += " --fail --silent --show-error --max-time 10 --retry 10 --retry-delay 2 --retry-all-errors"
		}
		start := time.Now()
		out, err := runShell(t.Context(), dir, env, line)
		t.Logf("%s: %s", line, time.Since(start).Round(100*time.Millisecond))
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if strings.HasPrefix(line, "go tool mage deploy:init ") {
			env = append(env, standInImages(t)...)
			withoutIPVS(t, dir)
		}
		if strings.HasPrefix(line, "go tool mage deploy:status ") && !appRunning.MatchString(out) {
			t.Errorf("deploy:status does not show the app's two tasks running:\n%s", out)
		}
		if strings.HasPrefix(line, "curl ") {
			t.Logf("/ready through the proxy: %s", strings.TrimSpace(out))
		}
	}
}

// standInImages pushes the images named by laptopImages' variables into
// the local registry (once deploy:init started it) and returns the
// variables naming the pushed copies; none when no variable is set.
func standInImages(t *testing.T) []string {
	t.Helper()
	var vars []string
	for _, img := range laptopImages {
		from := os.Getenv(img.variable)
		if from == "" || strings.HasPrefix(from, "127.0.0.1:5000/") {
			continue
		}
		to := "127.0.0.1:5000/" + img.repo + ":readme"
		for _, args := range [][]string{{"tag", from, to}, {"push", "--quiet", to}} {
			if out, err := exec.CommandContext(t.Context(), "docker", args...).CombinedOutput(); err != nil {
				t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", to).Run() })
		vars = append(vars, img.variable+"="+to)
	}
	return vars
}

// noIPVS reaches Postgres by DNS round robin: without IPVS (these CI
// machines) a Swarm VIP does not route. A test's override, never the
// production file's.
const noIPVS = `version: "3.9"
services:
  postgres:
    deploy:
      endpoint_mode: dnsrr
`

// withoutIPVS adds noIPVS to the local environment's files in the copy,
// committed, when this kernel has no IPVS (the Swarm loads it, where it
// can, when it starts).
func withoutIPVS(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return
	}
	t.Log("no IPVS here (no /proc/net/ip_vs): the local environment gets an override reaching Postgres by DNS round robin")
	envs := filepath.Join(dir, "deploy", "environments.yml")
	data, err := os.ReadFile(envs)
	if err != nil {
		t.Fatal(err)
	}
	const files = "files: [docker-compose.prod.yml]"
	i := bytes.Index(data, []byte("  local:\n"))
	j := bytes.Index(data[max(i, 0):], []byte(files))
	if i < 0 || j < 0 {
		t.Fatalf("%s: no %q under local: update this test", envs, files)
	}
	at := i + j
	data = slices.Concat(data[:at], []byte("files: [docker-compose.prod.yml, no-ipvs.yml]"), data[at+len(files):])
	if err := os.WriteFile(envs, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "no-ipvs.yml"), []byte(noIPVS), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "no IPVS here"}} {
		if out, err := exec.CommandContext(t.Context(), "git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
	}
}

// undoBlock is the README's block that removes what the laptop path made.
func undoBlock(t *testing.T) []string {
	t.Helper()
	blocks, _ := readBlocks(t, "README.md")
	for _, b := range blocks {
		if !strings.Contains(b.text, "docker swarm leave") {
			continue
		}
		var lines []string
		for line := range strings.SplitSeq(b.text, "\n") {
			if line, _, _ = strings.Cut(line, " #"); strings.TrimSpace(line) != "" {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
		return lines
	}
	t.Fatal("README.md has no block undoing the laptop path (docker swarm leave)")
	return nil
}

// runUndo runs the README's undo block as a reader does: the volumes once
// no container of the stacks is left (the README says to wait for that).
// Whatever it leaves fails the test, and is removed.
func runUndo(t *testing.T, cli *client.Client, lines, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, line := range lines {
		if strings.HasPrefix(line, "docker volume rm ") {
			waitNoStackContainers(ctx, cli)
		}
		if out, err := runShell(ctx, "", env, line); err != nil {
			t.Errorf("the README's undo: %s: %v\n%s", line, err, out)
		}
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err == nil && info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		t.Errorf("after the README's undo the engine is still in a Swarm (%s)", info.Info.Swarm.LocalNodeState)
		_, _ = cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true})
	}
	cs, _ := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	for _, c := range cs.Items {
		if name := strings.TrimPrefix(strings.Join(c.Names, ","), "/"); strings.HasPrefix(name, "service-template-local") || strings.HasPrefix(name, "proxy_") {
			t.Errorf("after the README's undo the container %s is left", name)
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
	vs, _ := cli.VolumeList(ctx, client.VolumeListOptions{})
	for _, v := range vs.Items {
		if strings.HasPrefix(v.Name, "service-template-local") || strings.HasPrefix(v.Name, "proxy_") {
			t.Errorf("after the README's undo the volume %s is left", v.Name)
			_, _ = cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		}
	}
}

// waitNoStackContainers waits until no container of a Swarm task is left.
func waitNoStackContainers(ctx context.Context, cli *client.Client) {
	for ctx.Err() == nil {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", "com.docker.swarm.task.id")})
		if err != nil || len(cs.Items) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
}

// runShell runs one line of a README block with sh in dir.
func runShell(ctx context.Context, dir string, env []string, line string) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
