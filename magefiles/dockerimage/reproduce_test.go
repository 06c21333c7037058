package dockerimage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fractionate/service-template/magefiles/runner"
)

// commitRepo makes a git repository of the project's files in a temporary
// directory, committed at a fixed time and tagged tag (when set): a clean
// HEAD whatever state the real checkout is in.
func commitRepo(t *testing.T, tag string) string {
	t.Helper()
	ctx := context.Background()
	dir := repoCopy(t)
	env := []string{
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@localhost", "GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@localhost",
		"GIT_AUTHOR_DATE=2025-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2025-01-02T03:04:05Z",
	}
	cmds := []runner.Cmd{
		runner.Command("git", "init", "--quiet", "--initial-branch=main"),
		runner.Command("git", "add", "--all"),
		runner.Command("git", "commit", "--quiet", "--no-gpg-sign", "-m", "test"),
	}
	if tag != "" {
		cmds = append(cmds, runner.Command("git", "tag", tag))
	}
	for _, c := range cmds {
		if _, err := runner.Output(ctx, c.InDir(dir).WithEnv(env...)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testGetenv(k string) string {
	return map[string]string{"REGISTRY": "127.0.0.1:5000", "IMAGE_NAME": "acme/api"}[k]
}

// The same commit, built as image:build builds it (the host's warm Go build
// cache) and again in a clean clone with an empty cache at another time,
// gives one digest. The clean build compiles everything: a minute or two.
func TestReproducibleFromACleanClone(t *testing.T) {
	if testing.Short() {
		// plain skip: no Docker involved; -short (test:unit) leaves out the
		// minute-long cold compile, which test and CI run.
		t.Skip("skipping under -short: compiles the service with an empty build cache")
	}
	dir := commitRepo(t, "v9.8.7")
	var out strings.Builder
	c, err := VerifyReproducible(context.Background(), dir, RebuildOptions{Getenv: testGetenv, Out: &out})
	t.Logf("normal build %s in %s, clean build %s in %s\n%s", c.Normal.Digest, c.Normal.Took.Round(time.Second), c.Clean.Digest, c.Clean.Took.Round(time.Second), out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Same() || !strings.HasPrefix(c.Normal.Digest, "sha256:") {
		t.Fatalf("digests %s and %s", c.Normal.Digest, c.Clean.Digest)
	}
	// The clone resolved the same stamp: the release tag, the commit time.
	s := c.Clean.Stamp
	if s.Version != "v9.8.7" || !s.Created.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) || s.Title != "api" || s != c.Normal.Stamp {
		t.Errorf("clean stamp %+v, normal %+v", s, c.Normal.Stamp)
	}
	// Uncommitted changes are refused: HEAD is not what would be built.
	if err := os.WriteFile(filepath.Join(dir, "app", "zz_reproduce_test.go"), []byte("package main\n\nvar _ = \"changed\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReproducible(context.Background(), dir, RebuildOptions{Getenv: testGetenv}); err == nil || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Errorf("dirty tree: err = %v, want a refusal", err)
	}
}

func TestReproduceUnknownRevision(t *testing.T) {
	dir := t.TempDir()
	if _, err := runner.Output(context.Background(), runner.Command("git", "init", "--quiet").InDir(dir)); err != nil {
		t.Fatal(err)
	}
	_, err := Rebuild(context.Background(), dir, "v0.0.0-nope")
	if err == nil || !strings.Contains(err.Error(), "rebuild v0.0.0-nope: no such commit") {
		t.Errorf("err = %v", err)
	}
}
