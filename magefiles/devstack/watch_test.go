package devstack

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// A tree shaped like the repository, with its .dockerignore (a whitelist).
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		".dockerignore":             "*\n!go.mod\n!go.sum\n!app/\n!config/\n!migrations/\n!bin/image/app\n**/*_test.go\n**/testdata\n",
		"go.mod":                    "module x\n",
		"go.sum":                    "",
		"app/main.go":               "package main\n",
		"app/main_test.go":          "package main\n",
		"app/testdata/fixture.json": "{}",
		"config/development.json":   "{}",
		"migrations/001_init.sql":   "-- +goose Up\n",
		"magefiles/magefile.go":     "package main\n",
		"README.md":                 "# x\n",
		"bin/image/app":             "binary",
		".git/HEAD":                 "ref: refs/heads/main\n",
	}
	for name, content := range files {
		write(t, dir, name, content)
	}
	return dir
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// A later write in the same tick must still look changed.
	later := time.Now().Add(time.Duration(len(content)) * time.Millisecond)
	_ = os.Chtimes(p, later, later)
}

func TestTakeWatchesWhatTheImageIsBuiltFrom(t *testing.T) {
	dir := tree(t)
	snap, err := Take(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(snap))
	want := []string{"app/main.go", "config/development.json", "go.mod", "go.sum", "migrations/001_init.sql"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("watched %q, want %q", got, want)
	}
}

func TestChanged(t *testing.T) {
	dir := tree(t)
	before, err := Take(dir)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "app/main.go", "package main\n\nfunc main() {}\n")                    // modified
	write(t, dir, "app/server.go", "package main\n")                                    // added
	write(t, dir, "app/main_test.go", "package main // changed\n")                      // not in the image
	write(t, dir, "bin/image/app", "a new binary")                                      // written by the build itself
	write(t, dir, "README.md", "# changed\n")                                           // not in the image
	if err := os.Remove(filepath.Join(dir, "migrations", "001_init.sql")); err != nil { // removed
		t.Fatal(err)
	}
	after, err := Take(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app/main.go", "app/server.go", "migrations/001_init.sql"}
	if got := Changed(before, after); !reflect.DeepEqual(got, want) {
		t.Fatalf("Changed = %q, want %q", got, want)
	}
	if got := Changed(after, after); got != nil {
		t.Fatalf("Changed(same) = %q", got)
	}
	if !isMigration("migrations/001_init.sql") || isMigration("app/migrations.go") {
		t.Fatal("isMigration")
	}
}
