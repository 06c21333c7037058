package template

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/gitinfo/gittest"
)

// What the end-to-end test makes of the template.
const (
	newModule   = "example.com/acme/billing"
	newRegistry = "registry.example.com:5000/acme" // not ghcr.io: the dockerimage exception must hold
	stagingHost = "ssh://deploy@10.1.2.3"
	// gonew's release; golang.org/x/tools at this version is already in
	// go.sum's module graph.
	gonewVersion = "v0.52.0"
)

// TestInstantiateTheTemplate makes a new service out of a copy of this
// working tree as a user would (template:init through mage), then builds,
// vets, unit-tests and lints the copy, and fails on any trace of the
// origin's module path or name left in it. Then it makes the same service
// with gonew from a module zip of the template (what the module proxy
// would serve) followed by template:init, and checks that the two agree.
//
// It takes minutes: each step compiles the whole service under a new
// module path (the Go build cache helps from the second run on).
func TestInstantiateTheTemplate(t *testing.T) {
	if testing.Short() {
		// plain skip: -short asks for the unit tests; this one builds, tests
		// and lints a whole copy of the repository (minutes).
		t.Skip("instantiates the whole template: not with -short")
	}
	onlyInTheTemplate(t)
	gittest.Isolate(t)
	ctx := t.Context()
	tmp := t.TempDir()

	// The template as it is now, committed in a fresh repository.
	made := filepath.Join(tmp, "billing")
	step(t, "copy the working tree", func() {
		if err := dockerimage.CopyRepo(ctx, repoRoot, made); err != nil {
			t.Fatal(err)
		}
		run(t, made, nil, "git", "init", "-q", "-b", "main")
		run(t, made, nil, "git", "add", "-A")
		run(t, made, nil, "git", "commit", "-q", "-m", "template")
	})
	proxy := filepath.Join(tmp, "proxy")
	step(t, "module zip of the template, as a proxy serves it", func() { serveModule(t, made, proxy) })

	initArgs := []string{"tool", "mage", "template:init", newModule, "-registry=" + newRegistry, "-staginghost=" + stagingHost}
	var out string
	step(t, "template:init", func() { out = run(t, made, nil, "go", initArgs...) })
	t.Logf("template:init said:\n%s", out)
	if !strings.Contains(out, "changed ") {
		t.Errorf("template:init printed no summary:\n%s", out)
	}
	noOriginLeft(t, made)

	run(t, made, nil, "git", "commit", "-q", "-am", "template:init")
	step(t, "template:init again, twice", func() {
		for _, args := range [][]string{initArgs, {"tool", "mage", "template:init", newModule}} {
			if out := run(t, made, nil, "go", args...); !strings.Contains(out, "nothing to change") {
				t.Errorf("go %s on the renamed tree:\n%s", strings.Join(args, " "), out)
			}
		}
		if st := run(t, made, nil, "git", "status", "--porcelain"); st != "" {
			t.Errorf("a second run changed files:\n%s", st)
		}
	})

	for _, c := range [][]string{
		{"go", "build", "./..."},
		{"go", "vet", "./..."},
		{"go", "test", "-short", "./..."},
		{"go", "tool", "mage", "lint"},
	} {
		step(t, strings.Join(c, " "), func() { run(t, made, nil, c[0], c[1:]...) })
	}

	step(t, "gonew, then template:init", func() { gonewThenInit(t, tmp, proxy, made, initArgs) })
}

// step runs f and logs how long it took.
func step(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("%-40s %s", what, time.Since(start).Round(time.Second))
}

// run runs a command in dir and returns its output; a failure fails the
// test with the output's tail.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	// The copy's tests run as a developer's unit run would, whatever this
	// run was asked to require or allow (CI sets these).
	cmd.Env = append(os.Environ(), "TEST_REQUIRE_DOCKER=", "TEST_SWARM=", "TEST_COMPOSE=")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, tail(out.String(), 60))
	}
	return out.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// noOriginLeft fails on every line of a tracked file in dir that still
// names the origin's module path or name, in any case. Excluded: go.sum
// files (checksums of other modules, never edited by hand) and generated
// files (a generator would write them again), of which there are none yet.
func noOriginLeft(t *testing.T, dir string) {
	t.Helper()
	files, err := trackedFiles(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	re := originHit()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		if path.Base(f) == "go.sum" || isGenerated(data) {
			t.Logf("not checked for the origin: %s", f)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			if re.Match(sc.Bytes()) {
				t.Errorf("%s:%d still names the origin: %s", f, n, strings.TrimSpace(sc.Text()))
			}
		}
	}
}

// isGenerated follows Go's convention for generated files.
func isGenerated(data []byte) bool {
	for line := range strings.SplitSeq(string(data[:min(len(data), 4096)]), "\n") {
		if strings.HasPrefix(line, "// Code generated ") && strings.HasSuffix(line, " DO NOT EDIT.") {
			return true
		}
	}
	return false
}

// serveModule writes a file-based module proxy at dir serving the
// repository at repo (HEAD) as the origin's module, version v0.0.1: the zip
// is made the way the go command makes one from a git repository.
func serveModule(t *testing.T, repo, dir string) {
	t.Helper()
	esc, err := module.EscapePath(Origin.Module)
	if err != nil {
		t.Fatal(err)
	}
	v := filepath.Join(dir, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(v, 0o755); err != nil {
		t.Fatal(err)
	}
	zf, err := os.Create(filepath.Join(v, "v0.0.1.zip"))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := modzip.CreateFromVCS(zf, module.Version{Path: Origin.Module, Version: "v0.0.1"}, abs, "HEAD", ""); err != nil {
		t.Fatal(err)
	}
	if err := zf.Close(); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"list":        "v0.0.1\n",
		"v0.0.1.info": `{"Version":"v0.0.1","Time":"2026-01-01T00:00:00Z"}`,
		"v0.0.1.mod":  string(gomod),
	} {
		if err := os.WriteFile(filepath.Join(v, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gonewThenInit makes the service with gonew from the proxy, finishes it
// with template:init, and compares it with made, the one template:init
// made alone. gonew copies one module: the nested tool modules are the
// only files it may lose.
func gonewThenInit(t *testing.T, tmp, proxy, made string, initArgs []string) {
	bin := filepath.Join(tmp, "bin")
	run(t, tmp, []string{"GOBIN=" + bin}, "go", "install", "golang.org/x/tools/cmd/gonew@"+gonewVersion)
	viaGonew := filepath.Join(tmp, "via-gonew")
	env := []string{
		"GOPROXY=file://" + filepath.ToSlash(proxy), "GOSUMDB=off", "GOWORK=off",
		// A module cache of its own, removable: the shared one must never
		// hold a stand-in for the origin's real module.
		"GOMODCACHE=" + filepath.Join(tmp, "modcache"), "GOFLAGS=-modcacherw",
	}
	run(t, tmp, env, filepath.Join(bin, "gonew"), Origin.Module+"@v0.0.1", newModule, viaGonew)
	run(t, viaGonew, nil, "git", "init", "-q", "-b", "main")
	run(t, viaGonew, nil, "git", "add", "-A")
	run(t, viaGonew, nil, "git", "commit", "-q", "-m", "gonew")
	out := run(t, viaGonew, nil, "go", initArgs...)
	if !strings.Contains(out, "tools/go.mod is missing") {
		t.Errorf("template:init after gonew does not warn about the missing tool modules:\n%s", out)
	}

	madeFiles, err := trackedFiles(t.Context(), made)
	if err != nil {
		t.Fatal(err)
	}
	gonewFiles, err := trackedFiles(t.Context(), viaGonew)
	if err != nil {
		t.Fatal(err)
	}
	var nested []string // directories of modules inside the template's
	for _, f := range madeFiles {
		if path.Base(f) == "go.mod" && f != "go.mod" {
			nested = append(nested, path.Dir(f)+"/")
		}
	}
	var lost []string
	for _, f := range madeFiles {
		if !slices.Contains(gonewFiles, f) {
			lost = append(lost, f)
			if !slices.ContainsFunc(nested, func(d string) bool { return strings.HasPrefix(f, d) }) {
				t.Errorf("gonew lost %s, which is not in a nested module", f)
			}
			continue
		}
		a, errA := os.ReadFile(filepath.Join(made, f))
		b, errB := os.ReadFile(filepath.Join(viaGonew, f))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between template:init and gonew + template:init (%v, %v)", f, errA, errB)
		}
	}
	t.Logf("gonew left out (nested modules): %s", strings.Join(lost, " "))
}
