package cmdline

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// The compiled targets refuse a stray word before any target runs: the
// engine behind DOCKER_HOST is never asked anything. A target that does
// run is seen asking it, which shows the engine would have seen the first.
func TestCompiledTargetsRefuseAStrayWord(t *testing.T) {
	if testing.Short() {
		// plain skip: -short is the unit tests; this compiles the targets.
		t.Skip("compiles the mage targets: not in -short mode")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "targets")
	build := exec.CommandContext(t.Context(), "go", "tool", "mage", "-compile", bin)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("compile the targets: %v\n%s", err, out)
	}

	// An engine that answers nothing useful, and counts who asks.
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	envs := filepath.Join(t.TempDir(), "environments.yml")
	if err := os.WriteFile(envs, []byte("environments:\n  local:\n    stack: cmdline-test\n    image: 127.0.0.1:5000/app\n    files: [docker-compose.prod.yml]\n    app_env: staging\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DEPLOY_ENVIRONMENTS_FILE="+envs, "MAGEFILE_LIST=", "MAGEFILE_HELP=")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, args := range [][]string{
		{"deploy:rollback", "local", "dryrun"},
		{"deploy:to", "local", "-dryrun", "now"},
		{"deploy:scale", "local", "app"},
		{"deploy:to", "-dryrun", "local"},
		{"deploy:unlock", "local", "-forse"},
	} {
		code, out := run(args...)
		if code != 1 || !strings.Contains(out, "nothing was run") {
			t.Errorf("%q: exit %d\n%s", args, code, out)
		}
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the engine was asked %d time(s) by refused command lines", n)
	}
	if code, out := run("-l"); code != 0 || !strings.Contains(out, "\n  test ") {
		t.Errorf("-l: exit %d, and it should list test:\n%s", code, out)
	}
	if code, out := run("deploy:lock", "local"); code == 0 || asked.Load() == 0 {
		t.Errorf("a good command line did not reach the engine: exit %d\n%s", code, out)
	}
}
