package dockertest

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for a test: it records what Missing asks of it.
type recorder struct {
	testing.TB
	calls []string
}

func (r *recorder) Helper()              {}
func (r *recorder) Fatal(args ...any)    { r.calls = append(r.calls, "fatal") }
func (r *recorder) Skip(args ...any)     { r.calls = append(r.calls, "skip") }
func (r *recorder) Skipf(string, ...any) { r.calls = append(r.calls, "skip") }

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		require string
		want    string // the first call; a real Fatal stops there
	}{
		{"", "skip"},
		{"0", "skip"},
		{"1", "fatal"},
	} {
		t.Run("TEST_REQUIRE_DOCKER="+tt.require, func(t *testing.T) {
			t.Setenv("TEST_REQUIRE_DOCKER", tt.require)
			r := &recorder{}
			Missing(r, "no engine")
			if len(r.calls) == 0 || r.calls[0] != tt.want {
				t.Errorf("calls = %v, want %s first", r.calls, tt.want)
			}
		})
	}
}

// The names the test targets sort by: a test that needs Docker and is named
// otherwise would run in the unit lane, where no engine is promised.
func TestNamedForDocker(t *testing.T) {
	for name, want := range map[string]bool{
		"TestIntegrationDevStack":         true,
		"TestE2EProductionStackRollsBack": true,
		"BenchmarkIntegrationBuild":       true,
		"TestProductionStackRollsBack":    false,
		"TestIntegratio":                  false,
		"BenchmarkE2EDeploy":              false,
		"ExampleIntegration":              false,
	} {
		if got := namedForDocker(name); got != want {
			t.Errorf("namedForDocker(%q) = %v, want %v", name, got, want)
		}
	}
}

// marker is what a plain skip needs beside it, with the reason it is not a
// Docker skip (or is an explicit opt-in, like TEST_SWARM unset).
const marker = "plain skip:"

// TestNoPlainDockerSkips reads every Go file of the module that uses the
// testing package: a t.Skip, t.Skipf or t.SkipNow must carry a "plain
// skip:" comment on its line or the line before, saying why it is not a
// missing Docker; anything Docker-related goes through Missing, which CI
// turns into a failure. This file and the rule's own home are exempt.
func TestNoPlainDockerSkips(t *testing.T) {
	root := moduleRoot(t)
	var files int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "bin" || hasGoMod(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || filepath.Dir(path) == mustAbs(t, ".") {
			return nil
		}
		files++
		for _, bad := range plainSkips(t, path) {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s:%d: %s without a %q comment: a skip for want of Docker must go through dockertest.Missing (TEST_REQUIRE_DOCKER=1 makes it a failure); any other skip says why with the comment", rel, bad.line, bad.call, marker)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 20 {
		t.Fatalf("read only %d Go files under %s: wrong root?", files, root)
	}
}

type skipCall struct {
	line int
	call string
}

// plainSkips parses one file and returns its unmarked skips.
func plainSkips(t *testing.T, path string) []skipCall {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	marked := map[int]bool{}
	for _, g := range f.Comments {
		if strings.Contains(g.Text(), marker) {
			// The comment's last line (a comment after the call) and the
			// line after it (a comment above the call).
			end := fset.Position(g.End()).Line
			marked[end], marked[end+1] = true, true
		}
	}
	var out []skipCall
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Skip" && sel.Sel.Name != "Skipf" && sel.Sel.Name != "SkipNow") {
			return true
		}
		if line := fset.Position(call.Pos()).Line; !marked[line] {
			out = append(out, skipCall{line, sel.Sel.Name})
		}
		return true
	})
	return out
}

// The check itself: it finds plain skips and lets marked ones through.
func TestPlainSkipsAreFound(t *testing.T) {
	src := `package x

import "testing"

func TestIntegrationA(t *testing.T) {
	if engineInSwarm() {
		t.Skip("in a swarm")
	}
	t.Skipf("%s", "x")
	// plain skip: explicit opt-out
	t.Skip("opted out")
	t.SkipNow() // plain skip: not Docker
	// plain skip: a long reason,
	// on two lines
	tb.Skip("x")
}
`
	path := filepath.Join(t.TempDir(), "x_test.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := plainSkips(t, path)
	if len(got) != 2 || got[0].line != 7 || got[1].line != 9 {
		t.Errorf("plainSkips = %+v, want lines 7 and 9", got)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir := mustAbs(t, ".")
	for !hasGoMod(dir) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
	return dir
}

func hasGoMod(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return !errors.Is(err, fs.ErrNotExist)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
