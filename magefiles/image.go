//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/magefile/mage/mg"
	"github.com/moby/moby/client"
	"golang.org/x/term"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/publish"
	"github.com/fractionate/service-template/magefiles/sbom"
	"github.com/fractionate/service-template/magefiles/signature"
)

// Image builds and publishes the service's container image.
type Image mg.Namespace

// Build builds the image (-target=prebuilt|runtime, default prebuilt), reproducibly, into the engine under every tag of the scheme; prints its ID, its digest and the tags.
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
	fmt.Println(built.Digest)
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

// Push builds the image and pushes its exact bytes under every tag, with its SBOM attached; signs it too when COSIGN_PRIVATE_KEY is set. Prints ref@digest. -output=FILE appends image=<repository>@<digest> to FILE (CI: $GITHUB_OUTPUT).
func (Image) Push(ctx context.Context, output *string) error {
	res, _, err := publish.Head(ctx, publish.HeadOptions{Root: ".", Getenv: os.Getenv, Runner: exec(), Out: os.Stderr,
		Warn: func(w string) { fmt.Fprintln(os.Stderr, "warning:", w) }})
	for _, p := range res.Pushed {
		fmt.Println(p)
	}
	if err != nil || output == nil {
		return err
	}
	return dockerimage.AppendOutput(*output, "image", res.Image.String())
}

// Sign signs an image in its registry (tag or @digest) with COSIGN_PRIVATE_KEY (PEM or file) and COSIGN_PASSWORD, binding its SBOM (attached first if missing).
func (Image) Sign(ctx context.Context, ref string) error {
	signer, ok, err := signature.SignerFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("set %s (the private key's PEM, or its file) and %s; make a key pair with mage image:keygen", signature.EnvPrivateKey, signature.EnvPassword)
	}
	creds, err := registryCredentials(ctx, ref)
	if err != nil {
		return err
	}
	d, a, err := publish.Sign(ctx, ref, signer, creds)
	if err != nil {
		return err
	}
	fmt.Printf("signed %s (SBOM %s)\n", d, a.Document)
	return nil
}

// Verify checks an image (tag or @digest): a signature by -key (a public key file or PEM; COSIGN_PUBLIC_KEY when unset) over its digest, binding the SBOM attached to it.
func (Image) Verify(ctx context.Context, ref string, key *string) error {
	k := os.Getenv("COSIGN_PUBLIC_KEY")
	if key != nil {
		k = *key
	}
	if k == "" {
		return fmt.Errorf("give the public key: -key=cosign.pub (or COSIGN_PUBLIC_KEY)")
	}
	creds, err := registryCredentials(ctx, ref)
	if err != nil {
		return err
	}
	r, err := signature.Verify(ctx, ref, signature.Policy{Key: k}, dockerimage.RemoteOptions(ctx, creds)...)
	if err != nil {
		return err
	}
	fmt.Println(r)
	return nil
}

// Sbom prints the SBOM (CycloneDX JSON) attached to an image in its registry (tag or @digest).
func (Image) Sbom(ctx context.Context, ref string) error {
	creds, err := registryCredentials(ctx, ref)
	if err != nil {
		return err
	}
	opts := dockerimage.RemoteOptions(ctx, creds)
	d, err := signature.ResolveDigest(ref, opts...)
	if err != nil {
		return err
	}
	a, err := sbom.Current(ctx, d, opts...)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(a.Doc)
	return err
}

// Keygen writes a cosign key pair, cosign.key (encrypted with COSIGN_PASSWORD, or a password asked for) and cosign.pub, into -dir (default .); never overwrites.
func (Image) Keygen(ctx context.Context, dir *string) error {
	d := "."
	if dir != nil {
		d = *dir
	}
	pw, err := keyPassword()
	if err != nil {
		return err
	}
	priv, pub, err := signature.WriteKeyPair(d, pw)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (keep it secret: CI reads it from the %s secret, its password from %s) and %s\n", priv, signature.EnvPrivateKey, signature.EnvPassword, pub)
	return nil
}

// VerifyReproducible builds HEAD as image:build does and again in a clean clone with an empty Go build cache (-target=prebuilt|runtime), and fails unless the digests are equal.
func (Image) VerifyReproducible(ctx context.Context, target *string) error {
	o := dockerimage.RebuildOptions{Out: os.Stderr}
	if target != nil {
		o.Target = *target
	}
	if o.Target == dockerimage.TargetRuntime {
		cli, err := dockerEngine(ctx)
		if err != nil {
			return err
		}
		defer cli.Close()
		o.Engine = cli
	}
	c, err := dockerimage.VerifyReproducible(ctx, ".", o)
	if c.Normal.Digest != "" {
		fmt.Printf("build:       %s (%s)\n", c.Normal.Digest, c.Normal.Took.Round(time.Second))
	}
	if c.Clean.Digest != "" {
		fmt.Printf("clean clone: %s (%s)\n", c.Clean.Digest, c.Clean.Took.Round(time.Second))
	}
	return err
}

// Rebuild builds a tag or commit in a clean clone and prints its image digest (with -digest=D, fails unless it is D).
func (Image) Rebuild(ctx context.Context, rev string, digest *string) error {
	r, err := dockerimage.Reproduce(ctx, ".", rev, dockerimage.RebuildOptions{Out: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (%s)\n", rev, r.Digest, r.Took.Round(time.Second))
	if digest != nil && *digest != r.Digest {
		return fmt.Errorf("%s rebuilds to %s, not %s", rev, r.Digest, *digest)
	}
	return nil
}

// registryCredentials resolves the credentials for ref's registry.
func registryCredentials(ctx context.Context, ref string) (dockerimage.Credentials, error) {
	host, err := publish.RegistryHost(ref)
	if err != nil {
		return dockerimage.Credentials{}, err
	}
	return dockerimage.ResolveCredentials(ctx, host, os.Getenv, authn.DefaultKeychain)
}

// keyPassword is COSIGN_PASSWORD when set (even empty), else asked for
// twice on the terminal.
func keyPassword() (secret.Value, error) {
	if pw, ok := os.LookupEnv(signature.EnvPassword); ok {
		return secret.New(pw), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return secret.Value{}, fmt.Errorf("set %s (it may be empty) or run this in a terminal", signature.EnvPassword)
	}
	var pw [2][]byte
	for i, prompt := range []string{"Password for the private key: ", "Again: "} {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return secret.Value{}, err
		}
		pw[i] = b
	}
	if string(pw[0]) != string(pw[1]) {
		return secret.Value{}, fmt.Errorf("the passwords differ")
	}
	return secret.New(string(pw[0])), nil
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
