package publish

import (
	"context"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
	"github.com/fractionate/service-template/magefiles/signature"
)

// HeadOptions say where HEAD's image goes.
type HeadOptions struct {
	Root   string              // the repository
	Getenv func(string) string // REGISTRY, IMAGE_NAME, credentials, COSIGN_*
	// Repository, when set, is where the image goes instead of
	// REGISTRY/IMAGE_NAME: an environment's image.
	Repository string
	Target     string // Dockerfile target, "" for the default
	Runner     runner.Runner
	Out        io.Writer // progress lines
	Warn       func(string)
}

// Head builds HEAD's image and publishes it (Publish): what image:push
// does, and what deploy:to does for an environment with a registry of its
// own. Credentials and the signing key are read before the build, so a
// missing one does not wait for it. Without a key the image is pushed with
// its SBOM, unsigned, and Warn says so. The plan is returned for its tags.
func Head(ctx context.Context, o HeadOptions) (Result, dockerimage.Plan, error) {
	getenv := o.Getenv
	if o.Repository != "" {
		named, err := reference.ParseNormalizedNamed(o.Repository)
		if err != nil {
			return Result{}, dockerimage.Plan{}, fmt.Errorf("image %q: %w", o.Repository, err)
		}
		getenv = func(k string) string {
			switch k {
			case "REGISTRY":
				return reference.Domain(named)
			case "IMAGE_NAME":
				return reference.Path(named)
			}
			return o.Getenv(k)
		}
	}
	plan, warnings, err := dockerimage.ResolvePlan(ctx, o.Root, o.Target, getenv)
	for _, w := range warnings {
		o.Warn(w)
	}
	if err != nil {
		return Result{}, plan, err
	}
	plan.Out = o.Out
	host, err := RegistryHost(plan.Repository)
	if err != nil {
		return Result{}, plan, err
	}
	creds, err := dockerimage.ResolveCredentials(ctx, host, getenv, authn.DefaultKeychain)
	if err != nil {
		return Result{}, plan, err
	}
	signer, signing, err := signature.SignerFromEnv(getenv)
	if err != nil {
		return Result{}, plan, err
	}
	if !signing {
		o.Warn(signature.EnvPrivateKey + " is not set: pushing with the SBOM but unsigned (sign later with go tool mage image:sign)")
	}
	cli, err := dockerimage.NewClient()
	if err != nil {
		return Result{}, plan, err
	}
	defer cli.Close()
	if err := dockerimage.Available(ctx, cli); err != nil {
		return Result{}, plan, err
	}
	built, err := dockerimage.BuildImage(ctx, o.Runner, cli, plan)
	if err != nil {
		return Result{}, plan, err
	}
	res, err := Publish(ctx, built, Options{Creds: creds, Signer: signer, Out: o.Out})
	return res, plan, err
}
