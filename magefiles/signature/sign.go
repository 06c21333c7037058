package signature

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// cosign's names for what it stores.
const (
	// PayloadMediaType is the media type of a signature layer: the signed
	// simple-signing payload.
	PayloadMediaType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds the base64 signature of the layer's payload.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// SBOMAnnotation is the signed payload's annotation that binds the SBOM:
	// the digest of the SBOM document attached to the image.
	SBOMAnnotation = "sbom"
)

// SignatureTag is where cosign keeps the signatures of digest d:
// sha256-<hex>.sig in d's repository.
func SignatureTag(d name.Digest) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
}

// Sign signs the image d names with signer and stores the signature as
// cosign does (SignatureTag, one layer per signature); signatures already
// there stay. annotations go into the signed payload (cosign sign -a): put
// the SBOM's document digest under SBOMAnnotation. Signing what this key
// has already signed with the same annotations changes nothing.
func Sign(ctx context.Context, d name.Digest, signer sigsig.SignerVerifier, annotations map[string]string, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	if _, err := remote.Head(d, opts...); err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	var anns map[string]any
	if len(annotations) > 0 {
		anns = map[string]any{}
		for k, v := range annotations {
			anns[k] = v
		}
	}
	body, err := json.Marshal(payload.Cosign{Image: d, Annotations: anns})
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	sigs, err := signatures(d, opts)
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	for _, s := range sigs.entries {
		if bytes.Equal(s.payload, body) && signer.VerifySignature(bytes.NewReader(s.signature), bytes.NewReader(body)) == nil {
			return nil // already signed by this key, with these annotations
		}
	}
	sig, err := signer.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	img, err := mutate.Append(sigs.image, mutate.Addendum{
		Layer:       static.NewLayer(body, PayloadMediaType),
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	if err := remote.Write(SignatureTag(d), img, opts...); err != nil {
		return fmt.Errorf("sign %s: store the signature: %w", d, err)
	}
	return nil
}

// entry is one stored signature.
type entry struct {
	payload   []byte
	signature []byte // decoded; nil when the annotation is missing or not base64
}

type signatureSet struct {
	image   v1.Image // the signature manifest; an empty one when there is none
	found   bool
	entries []entry
}

// signatures reads the signature manifest of d, if there is one.
func signatures(d name.Digest, opts []remote.Option) (signatureSet, error) {
	img, err := remote.Image(SignatureTag(d), opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		return signatureSet{image: base}, nil
	}
	if err != nil {
		return signatureSet{}, fmt.Errorf("read the signatures of %s: %w", d.DigestStr(), err)
	}
	set := signatureSet{image: img, found: true}
	m, err := img.Manifest()
	if err != nil {
		return set, fmt.Errorf("read the signatures of %s: %w", d.DigestStr(), err)
	}
	for _, l := range m.Layers {
		if l.MediaType != PayloadMediaType {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return set, fmt.Errorf("read a signature of %s: %w", d.DigestStr(), err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return set, fmt.Errorf("read a signature of %s: %w", d.DigestStr(), err)
		}
		body, err := io.ReadAll(rc) // checked against its digest as it is read
		_ = rc.Close()
		if err != nil {
			return set, fmt.Errorf("read a signature of %s: %w", d.DigestStr(), err)
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[SignatureAnnotation])
		if err != nil || len(sig) == 0 {
			sig = nil
		}
		set.entries = append(set.entries, entry{payload: body, signature: sig})
	}
	return set, nil
}
