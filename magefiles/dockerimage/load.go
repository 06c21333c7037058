package dockerimage

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

// LoadAPI is the part of the engine client Load needs.
type LoadAPI interface {
	ImageLoad(ctx context.Context, input io.Reader, opts ...client.ImageLoadOption) (client.ImageLoadResult, error)
}

// Load gives the local engine img under every ref (repository:tag), as
// `docker load` does, so `docker run` and a single-node Swarm can use the
// assembled image. It returns the engine's image ID, which is the digest of
// img's configuration. The engine stores the layer uncompressed: what it
// would push is its own recompression, with another digest, which is why
// pushes go through PushImage instead.
func Load(ctx context.Context, api LoadAPI, img v1.Image, refs []string, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	if len(refs) == 0 {
		return "", fmt.Errorf("load the image: no tags")
	}
	tags := map[name.Reference]v1.Image{}
	for _, r := range refs {
		t, err := name.NewTag(r)
		if err != nil {
			return "", fmt.Errorf("load the image: tag %q: %w", r, err)
		}
		tags[t] = img
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", fmt.Errorf("load the image: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.MultiRefWrite(tags, pw)) }()
	res, err := api.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		_ = pr.CloseWithError(err)
		return "", fmt.Errorf("load the image into the engine: %w", err)
	}
	defer res.Close()
	err = readStream(res, out, nil)
	_ = pr.Close() // ends the writer if the engine stopped reading early
	if err != nil {
		return "", fmt.Errorf("load the image into the engine: %w", err)
	}
	return id.String(), nil
}
