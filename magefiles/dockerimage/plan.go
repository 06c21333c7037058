package dockerimage

import (
	"context"
	"fmt"

	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/imagetag"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Tags reads the git state of dir and returns the image tags it gets under
// the tag scheme (magefiles/imagetag), with the scheme's warnings.
func Tags(ctx context.Context, dir string, getenv func(string) string) (gitinfo.Facts, []string, []string, error) {
	facts, err := gitinfo.Read(ctx, dir, getenv)
	if err != nil {
		return facts, nil, nil, err
	}
	tags, warnings, err := imagetag.Compute(imagetag.Input{
		SHA:        facts.SHA,
		Branch:     facts.Branch,
		Dirty:      facts.Dirty(),
		MainBranch: getenv("MAIN_BRANCH"),
		TagsAtHead: facts.TagsAtHead,
		Tags:       facts.Tags,
	})
	if err != nil {
		return facts, nil, warnings, fmt.Errorf("image tags: %w", err)
	}
	return facts, tags, warnings, nil
}

// ResolvePlan assembles the build of the repository at dir from its git
// state and the environment: tags from the scheme, the repository from
// REGISTRY/IMAGE_NAME (ImageName), the stamp from the commit (its time, not
// the clock's), and BUILDER_IMAGE, when set, for the runtime target's
// builder stage (golang:1.26 by default). target may be empty
// (TargetPrebuilt).
func ResolvePlan(ctx context.Context, dir, target string, getenv func(string) string) (Plan, []string, error) {
	return resolvePlan(ctx, dir, target, getenv, originURL(ctx, dir))
}

// originURL is the origin remote of the repository at dir; "" when there is
// none, which is fine: ImageName says what to set instead.
func originURL(ctx context.Context, dir string) string {
	origin, _ := runner.Output(ctx, runner.Command("git", "remote", "get-url", "origin").InDir(dir))
	return origin
}

// resolvePlan is ResolvePlan with the origin remote given: a clone made to
// rebuild takes its source's, so that the stamp is the same.
func resolvePlan(ctx context.Context, dir, target string, getenv func(string) string, origin string) (Plan, []string, error) {
	facts, tags, warnings, err := Tags(ctx, dir, getenv)
	if err != nil {
		return Plan{}, warnings, err
	}
	repo, err := ImageName(getenv("REGISTRY"), getenv("IMAGE_NAME"), getenv("GITHUB_REPOSITORY"), origin)
	if err != nil {
		return Plan{}, warnings, err
	}
	var args map[string]string
	if b := getenv("BUILDER_IMAGE"); b != "" {
		args = map[string]string{"BUILDER_IMAGE": b}
	}
	return Plan{
		Dir:        dir,
		BuildArgs:  args,
		Target:     target,
		Repository: repo,
		Tags:       tags,
		Stamp: Stamp{
			Version: VersionFromTags(tags),
			Commit:  facts.SHA,
			Created: facts.CommitTime,
			Source:  SourceURL(getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), origin),
			Title:   TitleOf(repo),
		},
	}, warnings, nil
}
