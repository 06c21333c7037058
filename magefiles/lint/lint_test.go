package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	var got []string
	for _, c := range Checks() {
		got = append(got, c.String())
	}
	want := []string{
		"go mod tidy -diff",
		"go vet ./...",
		"go vet -tags mage ./magefiles",
		"go tool -modfile=tools/go.mod golangci-lint run ./...",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Checks() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGofmt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok.go"), []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Gofmt(t.Context(), dir); err != nil {
		t.Fatalf("formatted tree: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte("package x\nfunc  f( ) {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Gofmt(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "bad.go") || strings.Contains(err.Error(), "ok.go") {
		t.Fatalf("Gofmt = %v, want an error naming bad.go only", err)
	}
}
