//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/magefile/mage/mg"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/dockerimage"
)

// Image builds and publishes the service's container image.
type Image mg.Namespace

// Build builds the image (-target=prebuilt|runtime, default prebuilt) tagged with every tag of the scheme.
func (Image) Build(ctx context.Context, target *string) error {
	t := ""
	if target != nil {
		t = *target
	}
	plan, err := imagePlan(ctx, t)
	if err != nil {
		return err
	}
	cli, built, err := buildImage(ctx, plan)
	if err != nil {
		return err
	}
	defer cli.Close()
	fmt.Println(built.ID)
	for _, r := range built.Refs {
		fmt.Println(r)
	}
	return nil
}

// Tags prints the image tags the current git state gets, one per line, without building.
func (Image) Tags(ctx context.Context) error {
	_, tags, warnings, err := dockerimage.Tags(ctx, ".", os.Getenv)
	printImageWarnings(warnings)
	if err != nil {
		return err
	}
	for _, t := range tags {
		fmt.Println(t)
	}
	return nil
}

// Push builds the image (cached when nothing changed) and pushes every tag; prints ref@digest. -output=FILE appends image=<repository>@<digest> to FILE (CI: $GITHUB_OUTPUT).
func (Image) Push(ctx context.Context, output *string) error {
	plan, err := imagePlan(ctx, "")
	if err != nil {
		return err
	}
	// Credentials first: a missing one should not wait for the build.
	repo, err := reference.ParseNormalizedNamed(plan.Repository)
	if err != nil {
		return err
	}
	creds, err := dockerimage.ResolveCredentials(ctx, reference.Domain(repo), os.Getenv, authn.DefaultKeychain)
	if err != nil {
		return err
	}
	cli, built, err := buildImage(ctx, plan)
	if err != nil {
		return err
	}
	defer cli.Close()
	pushed, err := dockerimage.Push(ctx, cli, built.Refs, creds, os.Stderr)
	for _, p := range pushed {
		fmt.Println(p)
	}
	if err != nil || output == nil {
		return err
	}
	image, err := dockerimage.Pinned(pushed)
	if err != nil {
		return err
	}
	return dockerimage.AppendOutput(*output, "image", image)
}

// imagePlan is the build of the current git state; progress goes to stderr,
// leaving stdout to results.
func imagePlan(ctx context.Context, target string) (dockerimage.Plan, error) {
	plan, warnings, err := dockerimage.ResolvePlan(ctx, ".", target, os.Getenv)
	printImageWarnings(warnings)
	plan.Out = os.Stderr
	return plan, err
}

// buildImage connects to the engine and builds plan; the caller closes the
// client it returns.
func buildImage(ctx context.Context, plan dockerimage.Plan) (*client.Client, dockerimage.Built, error) {
	cli, err := dockerEngine(ctx)
	if err != nil {
		return nil, dockerimage.Built{}, err
	}
	built, err := dockerimage.BuildImage(ctx, exec(), cli, plan)
	if err != nil {
		_ = cli.Close()
		return nil, dockerimage.Built{}, err
	}
	return cli, built, nil
}

// dockerEngine connects to the Docker engine and checks that it answers.
func dockerEngine(ctx context.Context) (*client.Client, error) {
	cli, err := dockerimage.NewClient()
	if err != nil {
		return nil, err
	}
	if err := dockerimage.Available(ctx, cli); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

func printImageWarnings(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
}
