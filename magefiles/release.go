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

// Tags HEAD as the next patch release (v1.2.3 -> v1.2.4).
func (Release) Patch(ctx context.Context,
	dryRun *bool, // print the plan; tag nothing
) error {
	return releaseTag(ctx, release.Final(release.Patch), dryRun)
}

// Tags HEAD as the next minor release (v1.2.3 -> v1.3.0).
func (Release) Minor(ctx context.Context,
	dryRun *bool, // print the plan; tag nothing
) error {
	return releaseTag(ctx, release.Final(release.Minor), dryRun)
}

// Tags HEAD as the next major release (v1.2.3 -> v2.0.0).
func (Release) Major(ctx context.Context,
	dryRun *bool, // print the plan; tag nothing
) error {
	return releaseTag(ctx, release.Final(release.Major), dryRun)
}

// Tags HEAD as the next pre-release <id>.N, like v1.3.0-rc.1.
func (Release) Pre(ctx context.Context, id string,
	bump *string, // patch, minor or major: start the pre-releases of a new version
	dryRun *bool, // print the plan; tag nothing
) error {
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

// Shows what each release target would tag, without tagging anything.
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
