package deploy

import (
	"context"
	"fmt"
	"io"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/publish"
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

// buildAndPush builds HEAD's image into env's repository and publishes it
// as image:push does (the exact bytes, the SBOM, a signature when
// COSIGN_PRIVATE_KEY is set): what deploy:to does for an environment with
// a local registry. It returns the commit's tag.
func buildAndPush(ctx context.Context, s Setup, env *envfile.Environment, r runner.Runner) (string, error) {
	res, plan, err := publish.Head(ctx, publish.HeadOptions{Root: s.Root, Getenv: s.Getenv, Repository: env.Image, Runner: r, Out: io.Discard,
		Warn: func(w string) { fmt.Fprintln(s.Out, "warning:", w) }})
	if err != nil {
		return "", err
	}
	for _, p := range res.Pushed {
		fmt.Fprintln(s.Out, "Pushed", p)
	}
	return plan.Tags[0], nil
}
