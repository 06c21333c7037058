package docs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/magefiles/devdb"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/gitinfo/gittest"
)

// readmeBlock is the README's block marked as run by the test calling it,
// one line per command (comments and blank lines left out).
func readmeBlock(t *testing.T) []string {
	t.Helper()
	blocks, _ := readBlocks(t, "README.md")
	for _, b := range blocks {
		if !slices.Contains(b.runBy, t.Name()) {
			continue
		}
		var lines []string
		for line := range strings.SplitSeq(b.text, "\n") {
			if line, _, _ = strings.Cut(line, " #"); strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#") {
				lines = append(lines, strings.TrimSpace(line))
			}
		}
		return lines
	}
	t.Fatalf("README.md has no block marked <!-- run by: %s -->", t.Name())
	return nil
}

// commandsIn keeps the lines that start with prefix.
func commandsIn(lines []string, prefix string) []string {
	return slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.HasPrefix(l, prefix) })
}

// checkout copies the working tree into a fresh repository of one commit
// under dir/name, as a clone of it would be.
func checkout(t *testing.T, dir, name string) string {
	t.Helper()
	gittest.Isolate(t)
	to := filepath.Join(dir, name)
	if err := dockerimage.CopyRepo(t.Context(), root, to); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "clone"}} {
		if out, err := exec.CommandContext(t.Context(), "git", append([]string{"-C", to}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
	}
	return to
}

// environ is the process environment without the variables named, plus
// extra.
func environ(drop []string, extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, name)
	})
	return append(env, extra...)
}

// TestIntegrationReadmeRun runs the README's main job as a newcomer does,
// in a fresh copy of the checkout with no database configured: `go tool
// mage run` starts its own Postgres container, migrates and serves, and the
// README's curl lines get answers from it. Ctrl-C stops it, as the README
// says; the container and its volume, kept between runs for a developer,
// are removed here. (The block's other command, `go tool mage test`, is
// what .ci/run runs.)
func TestIntegrationReadmeRun(t *testing.T) {
	dockertest.Require(t)
	if got := commandsIn(readmeBlock(t), "go tool mage"); !slices.Equal(got, []string{"go tool mage run", "go tool mage test"}) {
		t.Fatalf("the README's set-up commands are %q: this test runs go tool mage run; update it with them", got)
	}
	dir := checkout(t, t.TempDir(), "readme-run-"+dockertest.Unique(t))
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		name := devdb.ContainerName(dir)
		if _, err := cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove %s: %v", name, err)
		}
		if _, err := cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove volume %s: %v", name, err)
		}
		_ = cli.Close()
	})

	port := dockertest.FreePort(t)
	cmd := exec.Command("go", "tool", "mage", "run")
	cmd.Dir = dir
	// Nothing of this run's own configuration: the README's newcomer has
	// none. Its port is free, and its metrics listener is off.
	cmd.Env = environ([]string{"DATABASE_URL", "DATABASE_URL_FILE", "DOTENV_FILE", "SECRETS_DIR", "APP_ENV"},
		"HTTP_PORT="+strconv.Itoa(port), "METRICS_PORT=0")
	// Its own process group, so that an interrupt reaches every process
	// of it, as Ctrl-C on a terminal does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when it ended, with waitErr
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	stop := func() error {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
			return waitErr
		case <-time.After(time.Minute):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return errors.New("still running a minute after Ctrl-C")
		}
	}
	t.Cleanup(func() { _ = stop() })

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(base+"/ready", done, 5*time.Minute); err != nil {
		_ = stop()
		t.Fatalf("go tool mage run: %v\n%s", err, out.String())
	}
	t.Logf("go tool mage run: /ready answered 200 after %s", time.Since(start).Round(100*time.Millisecond))

	curls := 0
	if _, err := exec.LookPath("curl"); err != nil {
		t.Logf("no curl here: the README's curl lines are left to TestReadmeCurlExamples (app/internal/httpapi)")
	} else {
		for _, line := range readmeCurlLines(t) {
			curls++
			line = strings.ReplaceAll(line, "localhost:8080", "127.0.0.1:"+strconv.Itoa(port))
			c := exec.CommandContext(t.Context(), "sh", "-c", line+" --fail --silent --show-error --max-time 10")
			if b, err := c.CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", line, err, b)
			}
		}
	}
	if err := stop(); err != nil {
		t.Errorf("go tool mage run after Ctrl-C: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "shutdown complete") {
		t.Errorf("go tool mage run did not shut the service down cleanly:\n%s", out.String())
	}
	t.Logf("%d curl line(s) answered; the whole run took %s", curls, time.Since(start).Round(100*time.Millisecond))
}

// readmeCurlLines are the README's curl lines against the service `run`
// starts.
func readmeCurlLines(t *testing.T) []string {
	t.Helper()
	blocks, _ := readBlocks(t, "README.md")
	var lines []string
	for _, b := range blocks {
		for line := range strings.SplitSeq(b.text, "\n") {
			if strings.HasPrefix(line, "curl ") && strings.Contains(line, "localhost:8080/") {
				lines = append(lines, line)
			}
		}
	}
	if len(lines) == 0 {
		t.Fatal("README.md has no curl line for localhost:8080")
	}
	return lines
}

// waitReady polls url until it answers 200, the process ends (done), or
// the time is up.
func waitReady(url string, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("it ended before it answered")
		case <-time.After(500 * time.Millisecond):
		}
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s did not answer 200 within %s", url, limit)
}
