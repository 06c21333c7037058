package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fractionate/service-template/magefiles/dockerimage"
)

// The OCI empty descriptor: an artifact's configuration when it has none
// (image-spec 1.1, "Guidelines for Artifact Usage").
const emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

var emptyJSON = []byte("{}")

// rawManifest is a manifest to put as it is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// Artifact is an SBOM in a registry.
type Artifact struct {
	Manifest name.Digest // the artifact's manifest
	Document v1.Hash     // the digest of the document itself (its one layer)
	Doc      []byte      // the document; set by Find
}

// Attach pushes doc to the repository of subject as an OCI artifact (an
// image manifest with artifactType MediaType, an empty configuration, one
// layer: the document) whose subject is the image subject names. Registries
// with the referrers API index it themselves; for the others,
// go-containerregistry keeps the referrers tag (sha256-<hex>) up to date,
// as the OCI distribution spec says. created becomes the manifest's
// org.opencontainers.image.created annotation (omitted when zero), so the
// same document for the same image is the same artifact: attaching it again
// changes nothing.
func Attach(ctx context.Context, subject name.Digest, doc []byte, created time.Time, opts ...remote.Option) (Artifact, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Head(subject, opts...)
	if err != nil {
		return Artifact{}, fmt.Errorf("attach the SBOM to %s: %w", subject, err)
	}
	layer := static.NewLayer(doc, MediaType)
	config := static.NewLayer(emptyJSON, emptyMediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(subject.Context(), l, opts...); err != nil {
			return Artifact{}, fmt.Errorf("attach the SBOM to %s: upload: %w", subject, err)
		}
	}
	layerDesc, err := descriptorOf(layer, MediaType)
	if err != nil {
		return Artifact{}, err
	}
	configDesc, err := descriptorOf(config, emptyMediaType)
	if err != nil {
		return Artifact{}, err
	}
	configDesc.Data = emptyJSON
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  MediaType,
		Config:        configDesc,
		Layers:        []v1.Descriptor{layerDesc},
		Subject:       &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
	}
	if !created.IsZero() {
		m.Annotations = map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return Artifact{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return Artifact{}, err
	}
	ref := subject.Context().Digest(h.String())
	if err := remote.Put(ref, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return Artifact{}, fmt.Errorf("attach the SBOM to %s: %w", subject, err)
	}
	return Artifact{Manifest: ref, Document: layerDesc.Digest}, nil
}

func descriptorOf(l v1.Layer, mt types.MediaType) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// Find returns the SBOMs attached to subject, through the referrers API or
// the referrers tag, documents included; none is not an error. Each
// document is checked against its digest as it is read.
func Find(ctx context.Context, subject name.Digest, opts ...remote.Option) ([]Artifact, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	// No artifactType filter: some registries (go-containerregistry's own
	// among them) report the configuration's media type, the empty one
	// here, instead of the manifest's artifactType, and the filter would
	// drop the SBOM. The manifest itself is checked instead.
	idx, err := remote.Referrers(subject, opts...)
	if err != nil {
		return nil, fmt.Errorf("list what refers to %s: %w", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("list what refers to %s: %w", subject, err)
	}
	var found []Artifact
	for _, d := range im.Manifests {
		if d.ArtifactType != MediaType && d.ArtifactType != string(emptyMediaType) && d.ArtifactType != "" {
			continue // a signature, an attestation: not ours to read
		}
		a, ok, err := fetch(subject.Context().Digest(d.Digest.String()), subject, opts)
		if err != nil {
			return found, err
		}
		if ok {
			found = append(found, a)
		}
	}
	return found, nil
}

// fetch reads the artifact at ref; ok is false when it is not an SBOM.
func fetch(ref name.Digest, subject name.Digest, opts []remote.Option) (Artifact, bool, error) {
	a, err := fetchSBOM(ref, subject, opts)
	if errors.Is(err, errNotSBOM) {
		return Artifact{}, false, nil
	}
	return a, err == nil, err
}

var errNotSBOM = errors.New("not an SBOM")

func fetchSBOM(ref name.Digest, subject name.Digest, opts []remote.Option) (Artifact, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return Artifact{}, fmt.Errorf("read the SBOM %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return Artifact{}, fmt.Errorf("read the SBOM %s: %w", ref, err)
	}
	if m.ArtifactType != MediaType {
		return Artifact{}, errNotSBOM
	}
	// The index is only a hint: the manifest itself must name the subject.
	if m.Subject == nil || m.Subject.Digest.String() != subject.DigestStr() {
		return Artifact{}, fmt.Errorf("read the SBOM %s: it does not name %s as its subject", ref, subject.DigestStr())
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != MediaType {
		return Artifact{}, fmt.Errorf("read the SBOM %s: want one %s layer", ref, MediaType)
	}
	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return Artifact{}, fmt.Errorf("read the SBOM %s: %w", ref, err)
	}
	rc, err := layer.Compressed() // as stored: the document is not compressed
	if err != nil {
		return Artifact{}, fmt.Errorf("read the SBOM %s: %w", ref, err)
	}
	defer rc.Close()
	doc, err := io.ReadAll(rc) // go-containerregistry fails this read on a digest mismatch
	if err != nil {
		return Artifact{}, fmt.Errorf("read the SBOM %s: %w", ref, err)
	}
	return Artifact{Manifest: ref, Document: m.Layers[0].Digest, Doc: doc}, nil
}

// ForImage makes the SBOM of an image assembled by dockerimage: from the
// build information of its /app, dated with the image's creation time, the
// application's version from its version label.
func ForImage(img v1.Image) ([]byte, time.Time, error) {
	bin, err := dockerimage.AppFromImage(img)
	if err != nil {
		return nil, time.Time{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read the image's configuration: %w", err)
	}
	bom, err := FromBinary(bin, Options{Created: cf.Created.Time, Version: cf.Config.Labels["org.opencontainers.image.version"]})
	if err != nil {
		return nil, time.Time{}, err
	}
	doc, err := Encode(bom)
	return doc, cf.Created.Time, err
}

// forRemoteImage is ForImage of the image at ref, with the document's digest.
func forRemoteImage(ctx context.Context, ref name.Digest, opts []remote.Option) ([]byte, time.Time, v1.Hash, error) {
	img, err := remote.Image(ref, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return nil, time.Time{}, v1.Hash{}, fmt.Errorf("read %s: %w", ref, err)
	}
	doc, created, err := ForImage(img)
	if err != nil {
		return nil, time.Time{}, v1.Hash{}, fmt.Errorf("make the SBOM of %s: %w", ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(doc))
	return doc, created, h, err
}

// Ensure attaches the SBOM of the image at ref, made from the image itself
// (ForImage), unless that very document is attached already; it returns
// the artifact either way.
func Ensure(ctx context.Context, ref name.Digest, opts ...remote.Option) (Artifact, error) {
	doc, created, want, err := forRemoteImage(ctx, ref, opts)
	if err != nil {
		return Artifact{}, err
	}
	have, err := Find(ctx, ref, opts...)
	if err != nil {
		return Artifact{}, err
	}
	for _, a := range have {
		if a.Document == want {
			return a, nil
		}
	}
	a, err := Attach(ctx, ref, doc, created, opts...)
	a.Doc = doc
	return a, err
}

// ErrNone is returned by Current when no SBOM is attached.
var ErrNone = errors.New("no SBOM attached")

// Current returns the SBOM attached to ref; when several are (an SBOM made
// by an older version of this package stays when a newer one is attached),
// the one this version makes from the image (ForImage), or an error
// naming them all when none is.
func Current(ctx context.Context, ref name.Digest, opts ...remote.Option) (Artifact, error) {
	found, err := Find(ctx, ref, opts...)
	if err != nil {
		return Artifact{}, err
	}
	switch len(found) {
	case 0:
		return Artifact{}, fmt.Errorf("%s: %w", ref, ErrNone)
	case 1:
		return found[0], nil
	}
	_, _, want, err := forRemoteImage(ctx, ref, opts)
	if err != nil {
		return Artifact{}, err
	}
	var ds []string
	for _, a := range found {
		if a.Document == want {
			return a, nil
		}
		ds = append(ds, a.Manifest.DigestStr())
	}
	return Artifact{}, fmt.Errorf("%s has %d SBOMs attached (%s), none of them what this version makes from the image", ref, len(found), strings.Join(ds, ", "))
}

// Found is what Lookup learnt about one image.
type Found struct {
	Image   name.Digest
	HasSBOM bool
	Version string // of the module asked about; "" when the image does not contain it
}

// Lookup answers, for each image, whether its SBOM lists module (a module
// path, or "stdlib" for the Go standard library) and at which version:
// "which of these digests contain module M at version V" is the Found
// entries whose Version is V. An image without an SBOM is reported as such
// (HasSBOM false), not as an error.
func Lookup(ctx context.Context, images []name.Digest, module string, opts ...remote.Option) ([]Found, error) {
	var out []Found
	for _, d := range images {
		found, err := Find(ctx, d, opts...)
		if err != nil {
			return out, err
		}
		f := Found{Image: d, HasSBOM: len(found) > 0}
		for _, a := range found {
			bom, err := Decode(a.Doc)
			if err != nil {
				return out, fmt.Errorf("%s: %w", a.Manifest, err)
			}
			if v := VersionOf(bom, module); v != "" {
				f.Version = v
				break
			}
		}
		out = append(out, f)
	}
	return out, nil
}
