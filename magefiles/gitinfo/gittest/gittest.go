// Package gittest makes throwaway git repositories for tests of code that
// reads or changes a working tree.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Isolate makes git in this test independent of the machine it runs on: no
// global or system configuration, a fixed identity and commit time, and no
// repository found above the test's temporary directories. It uses
// t.Setenv, so the test cannot run in parallel.
func Isolate(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL":   os.DevNull,
		"GIT_CONFIG_NOSYSTEM": "1",
		"GIT_AUTHOR_NAME":     "Test",
		"GIT_AUTHOR_EMAIL":    "test@example.com",
		"GIT_COMMITTER_NAME":  "Test",
		"GIT_COMMITTER_EMAIL": "test@example.com",
		"GIT_AUTHOR_DATE":     "1700000000 +0000",
		"GIT_COMMITTER_DATE":  "1700000000 +0000",
		// Stops a temporary directory inside some checkout from being
		// taken for part of it.
		"GIT_CEILING_DIRECTORIES": filepath.Dir(t.TempDir()),
	} {
		t.Setenv(k, v)
	}
	// Variables that would point git somewhere else entirely.
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// Repo is a repository in a temporary directory whose default branch is main.
type Repo struct {
	t   testing.TB
	Dir string
}

// New isolates git (see Isolate) and initializes an empty repository.
func New(t testing.TB) *Repo {
	t.Helper()
	Isolate(t)
	r := &Repo{t: t, Dir: t.TempDir()}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git in the repository and returns its trimmed output; a failure
// fails the test.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.CommandContext(r.t.Context(), "git", append([]string{"-C", r.Dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write creates or replaces a file in the working tree.
func (r *Repo) Write(name, content string) {
	r.t.Helper()
	path := filepath.Join(r.Dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// Commit writes name with content, commits everything and returns the new
// commit's full id.
func (r *Repo) Commit(name, content string) string {
	r.t.Helper()
	r.Write(name, content)
	r.Git("add", "-A")
	r.Git("commit", "-q", "-m", "change "+name)
	return r.Git("rev-parse", "HEAD")
}

// Tags lists the repository's tags.
func (r *Repo) Tags() []string {
	r.t.Helper()
	out := r.Git("tag", "--list")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}
