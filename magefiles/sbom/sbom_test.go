package sbom

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// appBinary builds the service (./app) as the image does and returns it
// with the modules `go list` says it is built from ("path version").
func appBinary(t *testing.T) ([]byte, map[string]string) {
	t.Helper()
	root := filepath.Join("..", "..")
	out := filepath.Join(t.TempDir(), "app")
	build := exec.Command("go", "build", "-trimpath", "-o", out, "./app")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	list := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", "./app")
	list.Dir = root
	listed, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	mods := map[string]string{}
	for line := range strings.Lines(string(listed)) {
		if p, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			mods[p] = v
		}
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin, mods
}

func TestFromBinary(t *testing.T) {
	bin, linked := appBinary(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	bom, err := FromBinary(bin, Options{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Encode(bom)
	if err != nil {
		t.Fatal(err)
	}
	// Same binary, same document.
	again, _ := FromBinary(bin, Options{Created: created})
	doc2, _ := Encode(again)
	if !bytes.Equal(doc, doc2) {
		t.Error("two SBOMs of one binary differ")
	}

	back, err := Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if back.SpecVersion.String() != "1.6" || back.BOMFormat != "CycloneDX" || back.Metadata.Timestamp != "2025-01-02T03:04:05Z" {
		t.Errorf("spec %s format %s timestamp %s", back.SpecVersion, back.BOMFormat, back.Metadata.Timestamp)
	}
	if m := back.Metadata.Component; m == nil || m.Name != "github.com/fractionate/service-template" {
		t.Errorf("main component = %+v", m)
	}
	// Exactly the modules the binary is built from, at their versions.
	got := map[string]string{}
	for _, m := range Modules(back) {
		got[m.Path] = m.Version
	}
	if got["stdlib"] != runtime.Version() {
		t.Errorf("stdlib at %q, want %s", got["stdlib"], runtime.Version())
	}
	delete(got, "stdlib")
	if len(linked) < 5 || !maps.Equal(got, linked) {
		t.Errorf("SBOM modules %v\nwant (go list -deps ./app) %v", got, linked)
	}
	pgx := linked["github.com/jackc/pgx/v5"]
	if pgx == "" || VersionOf(back, "github.com/jackc/pgx/v5") != pgx {
		t.Errorf("pgx: linked %q, SBOM %q", pgx, VersionOf(back, "github.com/jackc/pgx/v5"))
	}
	if VersionOf(back, "example.com/not/linked") != "" {
		t.Error("a module that is not linked is listed")
	}
	if !strings.Contains(string(doc), `"purl": "pkg:golang/github.com/jackc/pgx/v5@`+pgx+`"`) {
		t.Error("no package URL for pgx")
	}
	if !strings.Contains(string(doc), `"name": "go:sum"`) {
		t.Error("module sums are not recorded")
	}

	if _, err := FromBinary([]byte("not a binary"), Options{}); err == nil {
		t.Error("not a Go binary: no error")
	}
}

func TestReplacedModuleIsTheReplacement(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "example.com/app"},
		Deps: []*debug.Module{
			{Path: "example.com/a", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1", Sum: "h1:x"}},
		},
		Settings: []debug.BuildSetting{{Key: "GOARCH", Value: "amd64"}},
	}
	bom := FromBuildInfo(info, Options{Version: "v2.0.0"})
	if m := bom.Metadata.Component; m.Version != "v2.0.0" || m.PackageURL != "pkg:golang/example.com/app@v2.0.0" {
		t.Errorf("main component %s %s, want the version given for (devel)", m.Version, m.PackageURL)
	}
	ms := Modules(bom)
	if len(ms) != 2 || ms[0] != (Module{"stdlib", "go1.26.8"}) || ms[1] != (Module{"example.com/fork", "v1.0.1"}) {
		t.Errorf("modules = %v", ms)
	}
	c := (*bom.Components)[1]
	if c.Properties == nil || (*c.Properties)[0].Value != "example.com/a@v1.0.0" || c.PackageURL != "pkg:golang/example.com/fork@v1.0.1" {
		t.Errorf("component = %+v", c)
	}
	if bom.Metadata.Timestamp != "" {
		t.Error("a zero Created still wrote a timestamp")
	}
}
