package dockerimage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RemoteOptions are the go-containerregistry options for a registry with
// creds, within ctx.
func RemoteOptions(ctx context.Context, creds Credentials) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(creds.Authenticator())}
}

// PushImage pushes img under every ref (repository:tag) with
// go-containerregistry: the registry gets exactly img's bytes, so the pushed
// digest is img's own digest, the one a rebuild reproduces (the engine's
// push would recompress the layer). The manifest and blobs go up once, the
// other tags are set on the same manifest, and each tag is read back to
// check it names that digest. A refused push names the ref and quotes the
// registry; credentials never appear in it.
func PushImage(ctx context.Context, img v1.Image, refs []string, creds Credentials, out io.Writer) ([]Pushed, error) {
	if out == nil {
		out = io.Discard
	}
	if len(refs) == 0 {
		return nil, errors.New("push: no tags to push")
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	opts := RemoteOptions(ctx, creds)
	var pushed []Pushed
	for i, r := range refs {
		tag, err := name.NewTag(r)
		if err != nil {
			return pushed, fmt.Errorf("push %s: %w", r, err)
		}
		if i == 0 {
			err = remote.Write(tag, img, opts...)
		} else {
			err = remote.Tag(tag, img, opts...)
		}
		if err != nil {
			return pushed, fmt.Errorf("push %s: %w%s", r, err, hint(err, creds))
		}
		desc, err := remote.Head(tag, opts...)
		if err != nil {
			return pushed, fmt.Errorf("push %s: read the tag back: %w", r, err)
		}
		if desc.Digest != digest {
			return pushed, fmt.Errorf("push %s: the registry has it at %s, not the pushed %s", r, desc.Digest, digest)
		}
		fmt.Fprintf(out, "pushed %s@%s\n", r, digest)
		pushed = append(pushed, Pushed{Ref: r, Digest: digest.String()})
	}
	return pushed, nil
}
