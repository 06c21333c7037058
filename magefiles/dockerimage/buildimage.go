package dockerimage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"runtime"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/runner"
)

// Plan is an image build from a repository: the binary (host go build for
// TargetPrebuilt, the Dockerfile's builder stage for TargetRuntime), then
// the image assembled around it.
type Plan struct {
	Dir        string
	Target     string // TargetPrebuilt when empty
	Repository string
	Tags       []string
	Stamp      Stamp
	BuildArgs  map[string]string // more build arguments, e.g. BUILDER_IMAGE
	NoCache    bool              // no engine cache (the builder stage)
	GoCache    string            // GOCACHE for the host build; the host's when empty
	Out        io.Writer
}

// ContainerAPI is what copying the binary out of the builder stage needs.
type ContainerAPI interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	CopyFromContainer(ctx context.Context, containerID string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
}

// RemoveAPI is the part of the engine client that removes images.
type RemoveAPI interface {
	ImageRemove(ctx context.Context, imageID string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

// Engine is what BuildImage needs of the engine client.
type Engine interface {
	BuildAPI
	VersionAPI
	LoadAPI
	ContainerAPI
	RemoveAPI
}

// BuilderStage is the Dockerfile stage that compiles the binary, and
// BuilderOutput where it leaves it.
const (
	BuilderStage  = "builder"
	BuilderOutput = "/out/app"
)

// BuildImage runs a Plan: the binary (go build on the host through r for
// TargetPrebuilt, for the engine's platform; the builder stage through the
// engine for TargetRuntime), the image assembled around it (Assemble), and
// the image loaded into the engine under every tag. The image's digest
// depends only on the binary and the stamp.
func BuildImage(ctx context.Context, r runner.Runner, api Engine, p Plan) (Built, error) {
	target := or(p.Target, TargetPrebuilt)
	if err := checkTarget(filepath.Join(p.Dir, Dockerfile), target); err != nil {
		return Built{}, err
	}
	if target != TargetPrebuilt && target != TargetRuntime {
		return Built{}, fmt.Errorf("build target %q: the image is assembled around the binary of %s or %s; build other stages with docker build", target, TargetPrebuilt, TargetRuntime)
	}
	refs, err := tagRefs(p.Repository, p.Tags)
	if err != nil {
		return Built{}, err
	}
	goos, goarch, err := EngineTarget(ctx, api)
	if err != nil {
		return Built{}, err
	}
	platform := Platform{OS: goos, Architecture: goarch}
	var img v1.Image
	if target == TargetPrebuilt {
		img, err = AssembleHost(ctx, r, p, platform)
	} else {
		img, err = assembleFromBuilder(ctx, api, p, platform)
	}
	if err != nil {
		return Built{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Built{}, err
	}
	id, err := Load(ctx, api, img, refs, p.Out)
	if err != nil {
		return Built{}, err
	}
	return Built{ID: id, Refs: refs, Image: img, Digest: digest.String()}, nil
}

// tagRefs is repository:tag for every tag, each checked.
func tagRefs(repository string, tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, errors.New("build: no tags to apply")
	}
	refs := Refs(repository, tags)
	for _, r := range refs {
		ref, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			return nil, fmt.Errorf("build: tag %q: %w", r, err)
		}
		if _, ok := ref.(reference.Tagged); !ok {
			return nil, fmt.Errorf("build: %q has no tag", r)
		}
	}
	return refs, nil
}

// AssembleHost builds the binary on the host through r (GoBuild, into
// p.Dir/HostBinary) for platform and assembles the image around it. It needs
// no engine.
func AssembleHost(ctx context.Context, r runner.Runner, p Plan, platform Platform) (v1.Image, error) {
	cmd, err := GoBuild{Dir: p.Dir, GOOS: platform.OS, GOARCH: platform.Architecture, Stamp: p.Stamp, GoCache: p.GoCache}.Cmd()
	if err != nil {
		return nil, err
	}
	if err := r.Run(ctx, cmd); err != nil {
		return nil, fmt.Errorf("build the binary for the image: %w", err)
	}
	return Assemble(filepath.Join(p.Dir, HostBinary), p.Stamp, platform)
}

// HostPlatform is linux on this machine's architecture: what a build
// without an engine targets.
func HostPlatform() Platform { return Platform{OS: "linux", Architecture: runtime.GOARCH} }

// assembleFromBuilder builds the Dockerfile's builder stage through the
// engine (untagged; the engine keeps it as cache, as it keeps any stage),
// copies BuilderOutput out of it, and assembles the image around it. A
// build without the cache (a clean rebuild) would be nobody's cache: its
// images are removed.
func assembleFromBuilder(ctx context.Context, api Engine, p Plan, platform Platform) (img v1.Image, err error) {
	id, err := buildStage(ctx, api, BuildOptions{
		Dir: p.Dir, Repository: p.Repository, Stamp: p.Stamp, BuildArgs: p.BuildArgs, NoCache: p.NoCache, Out: p.Out,
	}, BuilderStage, nil)
	if err != nil {
		return nil, err
	}
	if p.NoCache {
		defer func() {
			// The untagged step images above it go with it (PruneChildren).
			_, rmErr := api.ImageRemove(context.WithoutCancel(ctx), id, client.ImageRemoveOptions{PruneChildren: true})
			if rmErr != nil && err == nil {
				err = fmt.Errorf("remove the builder stage image %s: %w", id, rmErr)
			}
		}()
	}
	bin, err := CopyOut(ctx, api, id, BuilderOutput)
	if err != nil {
		return nil, err
	}
	return AssembleBytes(bin, p.Stamp, platform)
}

// CopyOut returns the content of the regular file at file in image, through
// a container created for it (never started) and removed afterwards.
func CopyOut(ctx context.Context, api ContainerAPI, image, file string) (data []byte, err error) {
	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:  image,
		Config: &container.Config{Entrypoint: []string{file}},
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s out of %s: create a container: %w", file, image, err)
	}
	defer func() {
		_, rmErr := api.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
		if rmErr != nil && err == nil {
			err = fmt.Errorf("copy %s out of %s: remove the container: %w", file, image, rmErr)
		}
	}()
	res, err := api.CopyFromContainer(ctx, c.ID, client.CopyFromContainerOptions{SourcePath: file})
	if err != nil {
		return nil, fmt.Errorf("copy %s out of %s: %w", file, image, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("copy %s out of %s: the engine sent no such file", file, image)
		}
		if err != nil {
			return nil, fmt.Errorf("copy %s out of %s: %w", file, image, err)
		}
		if h.Typeflag == tar.TypeReg && h.Name == path.Base(file) {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("copy %s out of %s: %w", file, image, err)
			}
			return b, nil
		}
	}
}
