// Package publish puts a built image in its registry with what proves where
// it came from: the exact assembled bytes (so the digest is the one a
// rebuild reproduces), its SBOM as an OCI referrer, and, when a signing key
// is configured, a cosign signature over the digest that binds the SBOM.
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	sigsig "github.com/sigstore/sigstore/pkg/signature"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/sbom"
	"github.com/fractionate/service-template/magefiles/signature"
)

// Options say how to publish.
type Options struct {
	Creds  dockerimage.Credentials // for the image's registry
	Signer sigsig.SignerVerifier   // nil: attach the SBOM, sign nothing
	Out    io.Writer               // progress lines; discarded when nil
}

// Result is what the registry has now.
type Result struct {
	Pushed []dockerimage.Pushed
	Image  name.Digest   // repository@digest, the form a deploy pins
	SBOM   sbom.Artifact // the SBOM attached to it
	Signed bool          // a signature by Options.Signer binds Image and SBOM
}

// Publish pushes built (dockerimage.BuildImage's result) under all its
// tags with dockerimage.PushImage, attaches the SBOM made from its binary,
// and signs the digest with o.Signer when there is one, the SBOM's digest
// in the signed payload. A failure after the push leaves the pushed image
// in place and says what is missing.
func Publish(ctx context.Context, built dockerimage.Built, o Options) (Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if built.Image == nil {
		return Result{}, errors.New("publish: the build has no assembled image (build it with dockerimage.BuildImage)")
	}
	pushed, err := dockerimage.PushImage(ctx, built.Image, built.Refs, o.Creds, o.Out)
	if err != nil {
		return Result{Pushed: pushed}, err
	}
	pinned, err := dockerimage.Pinned(pushed)
	if err != nil {
		return Result{Pushed: pushed}, err
	}
	d, err := name.NewDigest(pinned)
	if err != nil {
		return Result{Pushed: pushed}, fmt.Errorf("publish: %w", err)
	}
	res := Result{Pushed: pushed, Image: d}
	doc, created, err := sbom.ForImage(built.Image)
	if err != nil {
		return res, fmt.Errorf("publish %s: make the SBOM: %w", d, err)
	}
	opts := dockerimage.RemoteOptions(ctx, o.Creds)
	res.SBOM, err = sbom.Attach(ctx, d, doc, created, opts...)
	if err != nil {
		return res, fmt.Errorf("publish %s: pushed, but the SBOM is not attached: %w", d, err)
	}
	fmt.Fprintf(o.Out, "attached SBOM %s (document %s)\n", res.SBOM.Manifest.DigestStr(), res.SBOM.Document)
	if o.Signer == nil {
		return res, nil
	}
	if err := signature.Sign(ctx, d, o.Signer, map[string]string{signature.SBOMAnnotation: res.SBOM.Document.String()}, opts...); err != nil {
		return res, fmt.Errorf("publish %s: pushed with its SBOM, but not signed: %w", d, err)
	}
	res.Signed = true
	fmt.Fprintf(o.Out, "signed %s (%s)\n", d.DigestStr(), signature.SignatureTag(d).TagStr())
	return res, nil
}

// Sign signs an image already in a registry (ref: a tag or a digest
// reference): its SBOM is made from the image's own binary and attached
// unless that very document is already there (sbom.Ensure), then the
// digest is signed with the SBOM's digest in the payload. It returns the
// digest signed and the SBOM bound.
func Sign(ctx context.Context, ref string, signer sigsig.SignerVerifier, creds dockerimage.Credentials) (name.Digest, sbom.Artifact, error) {
	opts := dockerimage.RemoteOptions(ctx, creds)
	d, err := signature.ResolveDigest(ref, opts...)
	if err != nil {
		return name.Digest{}, sbom.Artifact{}, err
	}
	a, err := sbom.Ensure(ctx, d, opts...)
	if err != nil {
		return d, a, err
	}
	err = signature.Sign(ctx, d, signer, map[string]string{signature.SBOMAnnotation: a.Document.String()}, opts...)
	return d, a, err
}

// RegistryHost is the registry of an image reference, for
// dockerimage.ResolveCredentials.
func RegistryHost(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return reference.Domain(named), nil
}
