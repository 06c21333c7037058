//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/release"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Release tags HEAD of the release branch (MAIN_BRANCH, default main) as a
// semver release; pushing the tag is left to you.
type Release mg.Namespace

// Patch tags HEAD as the next patch release (v1.2.3 -> v1.2.4); -dryrun prints the plan.
func (Release) Patch(ctx context.Context, dryRun *bool) error {
	return releaseTag(ctx, release.Final(release.Patch), dryRun)
}

// Minor tags HEAD as the next minor release (v1.2.3 -> v1.3.0); -dryrun prints the plan.
func (Release) Minor(ctx context.Context, dryRun *bool) error {
	return releaseTag(ctx, release.Final(release.Minor), dryRun)
}

// Major tags HEAD as the next major release (v1.2.3 -> v2.0.0); -dryrun prints the plan.
func (Release) Major(ctx context.Context, dryRun *bool) error {
	return releaseTag(ctx, release.Final(release.Major), dryRun)
}

// Pre tags HEAD as the next pre-release <id>.N, like v1.3.0-rc.1 (-bump=minor starts a new version; -dryrun).
func (Release) Pre(ctx context.Context, id string, bump *string, dryRun *bool) error {
	var b *release.Bump
	if bump != nil {
		v, err := release.ParseBump(*bump)
		if err != nil {
			return err
		}
		b = &v
	}
	return releaseTag(ctx, release.Pre(id, b), dryRun)
}

// Next shows what each release target would tag, without tagging anything.
func (Release) Next(ctx context.Context) error {
	f, err := gitinfo.Read(ctx, ".", os.Getenv)
	if err != nil {
		return err
	}
	for _, c := range release.Preview(f.Tags) {
		if c.Err != nil {
			fmt.Printf("%-22s refused: %v\n", c.Command, c.Err)
			continue
		}
		fmt.Printf("%-22s v%s\n", c.Command, c.Version)
	}
	if err := release.Check(f, os.Getenv("MAIN_BRANCH")); err != nil {
		fmt.Printf("\nA release now would be refused: %v\n", err)
	}
	return nil
}

func releaseTag(ctx context.Context, choose release.Choose, dryRun *bool) error {
	o := release.Options{Branch: os.Getenv("MAIN_BRANCH"), Getenv: os.Getenv}
	p, err := release.Prepare(ctx, o, choose)
	if err != nil {
		return err
	}
	if dryRun != nil && *dryRun {
		return release.Apply(ctx, runner.DryRun{}, p)
	}
	if err := release.Apply(ctx, exec(), p); err != nil {
		return err
	}
	fmt.Printf("Tagged %s. Push the tag to release it:\n\n    %s\n", p.Tag, p.NextStep())
	return nil
}
