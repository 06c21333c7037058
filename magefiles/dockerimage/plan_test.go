package dockerimage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fractionate/service-template/magefiles/gitinfo/gittest"
)

func TestResolvePlan(t *testing.T) {
	repo := gittest.New(t)
	repo.Write("app/main.go", "package main\n")
	repo.Git("add", ".")
	repo.Git("commit", "-q", "-m", "first")
	repo.Git("tag", "v1.4.0")
	repo.Git("remote", "add", "origin", "git@github.com:Fractionate/Neon.git")
	sha := repo.Git("rev-parse", "HEAD")

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	plan, warnings, err := ResolvePlan(context.Background(), repo.Dir, "", getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if want := []string{sha[:7], "main", "latest", "v1.4.0", "v1.4"}; !slices.Equal(plan.Tags, want) {
		t.Errorf("tags = %q, want %q", plan.Tags, want)
	}
	if plan.Repository != "ghcr.io/fractionate/neon" {
		t.Errorf("repository = %q", plan.Repository)
	}
	want := Stamp{
		Version: "v1.4.0", Commit: sha, Created: time.Unix(1700000000, 0).UTC(),
		Source: "https://github.com/Fractionate/Neon", Title: "neon",
	}
	if plan.Stamp != want {
		t.Errorf("stamp = %+v, want %+v", plan.Stamp, want)
	}

	// A dirty tree: only the -dirty tag, and that is the version; the
	// environment overrides the name.
	repo.Write("app/main.go", "package main // changed\n")
	env["REGISTRY"], env["IMAGE_NAME"], env["BUILDER_IMAGE"] = "127.0.0.1:5000", "acme/api", "local/go:1.26"
	plan, warnings, err = ResolvePlan(context.Background(), repo.Dir, TargetRuntime, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sha[:7] + "-dirty"}; !slices.Equal(plan.Tags, want) || plan.Stamp.Version != want[0] || len(warnings) != 1 {
		t.Errorf("dirty: tags %q version %q warnings %q", plan.Tags, plan.Stamp.Version, warnings)
	}
	if plan.BuildArgs["BUILDER_IMAGE"] != "local/go:1.26" {
		t.Errorf("BUILDER_IMAGE not passed on: %v", plan.BuildArgs)
	}
	if plan.Repository != "127.0.0.1:5000/acme/api" || plan.Target != TargetRuntime || plan.Stamp.Title != "api" {
		t.Errorf("dirty: repository %q target %q title %q", plan.Repository, plan.Target, plan.Stamp.Title)
	}

	// No name anywhere: a clear error.
	repo.Git("remote", "remove", "origin")
	delete(env, "IMAGE_NAME")
	if _, _, err := ResolvePlan(context.Background(), repo.Dir, "", getenv); err == nil {
		t.Error("no IMAGE_NAME, GITHUB_REPOSITORY or origin: no error")
	}
}
