package dockerimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree creates files (path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestContextFiles(t *testing.T) {
	ignore, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore":                 string(ignore),
		"Dockerfile":                    "FROM scratch AS prebuilt\n",
		"go.mod":                        "module x\n",
		"go.sum":                        "",
		"app/main.go":                   "package main\n",
		"app/internal/server/server.go": "package server\n",
		"app/internal/config/testdata/fuzz/corpus":     "x",
		"app/internal/server/server_test.go":           "package server\n",
		"app/.env":                                     "SECRET=1",
		"app/main.go.swp":                              "",
		"config/embed.go":                              "package config\n",
		"config/production.json":                       "{}",
		"migrations/00001_x.sql":                       "",
		"migrations/embed.go":                          "package migrations\n",
		"bin/image/app":                                "ELF",
		"bin/other":                                    "ELF",
		"bin/linux-arm64/app":                          "ELF",
		".env":                                         "SECRET=1",
		".env.production":                              "SECRET=1",
		".git/config":                                  "[core]",
		".git/objects/ab/cdef":                         "x",
		".github/workflows/ci.yml":                     "on: push",
		".vscode/settings.json":                        "{}",
		".idea/workspace.xml":                          "",
		".ci/run":                                      "#!/bin/sh",
		"magefiles/image.go":                           "package main\n",
		"magefiles/dockerimage/dockerimage.go":         "package dockerimage\n",
		"README.md":                                    "# x",
		"secrets/token.txt":                            "SECRET=1",
		"coverage.out":                                 "",
		"docker-compose.yml":                           "",
		"notes.log":                                    "",
		"node_modules/x/index.js":                      "",
		"app/internal/server/testdata/golden.json":     "{}",
		"app/internal/httpapi/openapi.yaml":            "openapi: 3.1.0",
		"app/internal/httpapi/testdata/openapi.yaml":   "",
		"app/internal/notes/notes.go":                  "package notes\n",
		"app/internal/notes/notes_integration_test.go": "package notes\n",
	})

	common := []string{
		".dockerignore", "Dockerfile",
		"app/internal/httpapi/openapi.yaml",
		"app/internal/notes/notes.go",
		"app/internal/server/server.go",
		"app/main.go",
		"bin/image/app",
		"config/embed.go", "config/production.json",
		"go.mod", "go.sum",
		"migrations/00001_x.sql", "migrations/embed.go",
	}
	for _, target := range []string{TargetPrebuilt, TargetRuntime} {
		t.Run(target, func(t *testing.T) {
			got, err := ContextFiles(dir, target)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, common) {
				t.Errorf("context files:\n got  %q\n want %q", got, common)
			}
		})
	}

	// The runtime target gets an empty placeholder, not the host binary.
	for target, want := range map[string]string{TargetPrebuilt: "ELF", TargetRuntime: ""} {
		if got := contextFile(t, dir, target, HostBinary); got != want {
			t.Errorf("target %s: %s = %q, want %q", target, HostBinary, got, want)
		}
	}
}

// contextFile returns the content of name in the build context.
func contextFile(t *testing.T, dir, target, name string) string {
	t.Helper()
	rc, err := Context(dir, target)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s not in the context", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			if h.Uid != 0 || h.Gid != 0 {
				t.Errorf("%s owned by %d:%d, want 0:0", name, h.Uid, h.Gid)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// A .dockerignore that ignores everything still lets the Dockerfile through,
// as the docker CLI does: the daemon needs it.
func TestContextAlwaysSendsTheDockerfile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore": "*\n",
		"Dockerfile":    "FROM scratch\n",
		"other":         "",
	})
	got, err := ContextFiles(dir, TargetRuntime)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".dockerignore", "Dockerfile", HostBinary}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestContextOfTheRepository(t *testing.T) {
	got, err := ContextFiles(repoRoot(t), TargetRuntime)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		switch {
		case strings.HasPrefix(f, ".git/"), strings.HasPrefix(f, "magefiles/"), strings.HasPrefix(f, ".ci/"),
			strings.HasSuffix(f, "_test.go"), strings.Contains(f, "/testdata/"), strings.Contains(filepath.Base(f), ".env"):
			t.Errorf("%s is in the build context", f)
		}
	}
	for _, want := range []string{"Dockerfile", "go.mod", "go.sum", "app/main.go"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s is not in the build context", want)
		}
	}
}
