package deploy

import (
	"context"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/release"
	"github.com/fractionate/service-template/magefiles/runner"
)

// defaultTag is the tag HEAD's image has under the tag scheme: its release
// tag when HEAD carries one (what a protected environment runs), else the
// commit's own tag (abc1234, or abc1234-dirty).
func defaultTag(ctx context.Context, s Setup) (string, error) {
	facts, tags, _, err := dockerimage.Tags(ctx, s.Root, s.Getenv)
	if err != nil {
		return "", err
	}
	if !facts.Dirty() {
		for _, t := range facts.TagsAtHead {
			if release.IsReleaseTag(t) {
				return t, nil
			}
		}
	}
	if len(tags) == 0 {
		return "", fmt.Errorf("HEAD's image has no tag")
	}
	return tags[0], nil
}

// buildAndPush builds HEAD's image into env's repository and pushes it:
// what deploy:to does for an environment with a local registry. It
// returns the commit's tag.
func buildAndPush(ctx context.Context, s Setup, env *envfile.Environment, r runner.Runner) (string, error) {
	named, err := reference.ParseNormalizedNamed(env.Image)
	if err != nil {
		return "", err
	}
	getenv := func(k string) string {
		switch k {
		case "REGISTRY":
			return reference.Domain(named)
		case "IMAGE_NAME":
			return reference.Path(named)
		}
		return s.Getenv(k)
	}
	plan, warnings, err := dockerimage.ResolvePlan(ctx, s.Root, "", getenv)
	for _, w := range warnings {
		fmt.Fprintln(s.Out, "warning:", w)
	}
	if err != nil {
		return "", err
	}
	plan.Out = io.Discard
	cli, err := dockerimage.NewClient()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	fmt.Fprintf(s.Out, "Building %s:%s\n", plan.Repository, plan.Tags[0])
	built, err := dockerimage.BuildImage(ctx, r, cli, plan)
	if err != nil {
		return "", err
	}
	creds, err := dockerimage.ResolveCredentials(ctx, reference.Domain(named), s.Getenv, authn.DefaultKeychain)
	if err != nil {
		return "", err
	}
	pushed, err := dockerimage.Push(ctx, cli, built.Refs, creds, io.Discard)
	if err != nil {
		return "", err
	}
	for _, p := range pushed {
		fmt.Fprintln(s.Out, "Pushed", p)
	}
	return plan.Tags[0], nil
}
