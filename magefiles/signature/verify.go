package signature

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/fractionate/service-template/magefiles/sbom"
)

// What Verify can find wrong; its errors wrap one of these (errors.Is), and
// say more.
var (
	ErrUnsigned     = errors.New("no signature")
	ErrWrongKey     = errors.New("signed by another key")
	ErrOtherDigest  = errors.New("signature is for another digest")
	ErrSBOMUnbound  = errors.New("the signature binds no SBOM")
	ErrSBOMMissing  = errors.New("SBOM missing")
	ErrSBOMMismatch = errors.New("SBOM digest mismatch")
)

// Policy is what an image must satisfy: today, a signature by Key (an
// environment's `verify:` key: a public key PEM, inline or as a path).
// Keyless signatures (an OIDC issuer and identity, Fulcio and Rekor) are
// not implemented: they need the public-good sigstore services, which a
// deploy cannot reach offline.
type Policy struct {
	Key string
}

// Report is what Verify checked.
type Report struct {
	Image       name.Digest
	Key         string // the key's ID (KeyID)
	Signatures  int    // valid signatures by the key over this digest
	SBOM        sbom.Artifact
	Annotations map[string]string // of the valid signature that binds the SBOM
}

// String is one line for people.
func (r Report) String() string {
	return fmt.Sprintf("%s: signed by %s (%d signature(s)); SBOM %s bound by the signature", r.Image.DigestStr(), r.Key, r.Signatures, r.SBOM.Document)
}

// Verify checks the image ref names (a digest reference, or a tag, which is
// resolved to its digest first) against p: a valid signature by p's key
// over exactly this digest, whose payload binds the digest of an SBOM
// attached to the image (package sbom). Its error says what is missing:
// "no signature for <digest>", "signed by another key", "signature is for
// <other digest>", "SBOM missing", "SBOM digest mismatch".
func Verify(ctx context.Context, ref string, p Policy, opts ...remote.Option) (Report, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	if p.Key == "" {
		return Report{}, errors.New("verify: the policy names no public key")
	}
	verifier, pub, err := LoadVerifier(p.Key)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	d, err := ResolveDigest(ref, opts...)
	if err != nil {
		return Report{}, fmt.Errorf("verify %s: %w", ref, err)
	}
	r := Report{Image: d, Key: KeyID(pub)}
	sigs, err := signatures(d, opts)
	if err != nil {
		return r, fmt.Errorf("verify %s: %w", d, err)
	}
	var otherDigests []string
	wrongKey := 0
	bound := map[string]map[string]string{} // SBOM digest -> annotations of a valid signature binding it
	for _, s := range sigs.entries {
		if s.signature == nil || verifier.VerifySignature(bytes.NewReader(s.signature), bytes.NewReader(s.payload)) != nil {
			wrongKey++
			continue
		}
		var pl payload.Cosign
		if err := json.Unmarshal(s.payload, &pl); err != nil {
			return r, fmt.Errorf("verify %s: a signature by %s has a payload that cannot be read: %w", d, r.Key, err)
		}
		if pl.Image.DigestStr() != d.DigestStr() {
			otherDigests = append(otherDigests, pl.Image.DigestStr())
			continue
		}
		r.Signatures++
		anns := map[string]string{}
		for k, v := range pl.Annotations {
			if s, ok := v.(string); ok {
				anns[k] = s
			}
		}
		if anns[SBOMAnnotation] != "" {
			bound[anns[SBOMAnnotation]] = anns
		}
	}
	switch {
	case r.Signatures > 0:
	case len(otherDigests) > 0:
		return r, fmt.Errorf("verify %s: %w: a signature by %s names %s, not %s (copied from another image?)", d, ErrOtherDigest, r.Key, strings.Join(otherDigests, ", "), d.DigestStr())
	case wrongKey > 0:
		return r, fmt.Errorf("verify %s: %w: %d signature(s), none by %s", d, ErrWrongKey, wrongKey, r.Key)
	default:
		return r, fmt.Errorf("verify: %w for %s (nothing at %s)", ErrUnsigned, d, SignatureTag(d).TagStr())
	}
	if len(bound) == 0 {
		return r, fmt.Errorf("verify %s: %w: sign it again now that its SBOM is attached (mage image:sign)", d, ErrSBOMUnbound)
	}
	signed := slices.Sorted(maps.Keys(bound))
	found, err := sbom.Find(ctx, d, opts...)
	if err != nil {
		return r, fmt.Errorf("verify %s: %w", d, err)
	}
	if len(found) == 0 {
		return r, fmt.Errorf("verify %s: %w: the signature binds SBOM %s, and no SBOM is attached", d, ErrSBOMMissing, strings.Join(signed, ", "))
	}
	var attached []string
	for _, a := range found {
		if anns, ok := bound[a.Document.String()]; ok {
			r.SBOM, r.Annotations = a, anns
			return r, nil
		}
		attached = append(attached, a.Document.String())
	}
	return r, fmt.Errorf("verify %s: %w: the signature binds SBOM %s, the attached one is %s (changed after signing?)", d, ErrSBOMMismatch, strings.Join(signed, ", "), strings.Join(attached, ", "))
}

// ResolveDigest turns ref into a digest reference: as it is when it has a
// digest, else the digest the registry has for its tag.
func ResolveDigest(ref string, opts ...remote.Option) (name.Digest, error) {
	if d, err := name.NewDigest(ref); err == nil {
		return d, nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	desc, err := remote.Head(r, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return r.Context().Digest(desc.Digest.String()), nil
}
