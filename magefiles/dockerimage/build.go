package dockerimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// BuildAPI is the part of the engine client Build needs.
type BuildAPI interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
}

// BuildOptions describe one image build.
type BuildOptions struct {
	Dir        string   // repository root: the build context and its Dockerfile
	Target     string   // Dockerfile stage; TargetPrebuilt when empty
	Repository string   // REGISTRY/IMAGE_NAME (ImageName)
	Tags       []string // every tag the scheme gives; all are applied by the build
	Stamp      Stamp
	BuildArgs  map[string]string // more build arguments, e.g. BUILDER_IMAGE
	Labels     map[string]string // extra labels on top of the Dockerfile's
	NoCache    bool              // ignore the engine's layer cache
	Out        io.Writer         // progress lines; discarded when nil
}

// Built is the result of a build.
type Built struct {
	ID   string   // image ID in the engine, sha256:...
	Refs []string // repository:tag for each tag, all pointing at ID
	// Image and Digest are set by BuildImage: the assembled OCI image and
	// its manifest digest, which PushImage pushes unchanged.
	Image  v1.Image
	Digest string
}

// Build builds the image from the Dockerfile through the engine's API (the
// classic builder; no `docker build` process) and tags it with every tag in
// one request, so a failed build tags nothing. This is what `docker build`
// gives; its image is not reproducible (the builder writes the build time
// into it). BuildImage assembles the reproducible image instead. An unknown target fails before the engine is
// asked, naming the stages that exist.
func Build(ctx context.Context, api BuildAPI, o BuildOptions) (Built, error) {
	target := or(o.Target, TargetPrebuilt)
	if err := checkTarget(filepath.Join(o.Dir, Dockerfile), target); err != nil {
		return Built{}, err
	}
	if len(o.Tags) == 0 {
		return Built{}, errors.New("docker build: no tags to apply")
	}
	refs := Refs(o.Repository, o.Tags)
	for _, r := range refs {
		ref, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			return Built{}, fmt.Errorf("docker build: tag %q: %w", r, err)
		}
		if _, ok := ref.(reference.Tagged); !ok {
			return Built{}, fmt.Errorf("docker build: %q has no tag", r)
		}
	}
	if target == TargetPrebuilt {
		if _, err := os.Stat(filepath.Join(o.Dir, HostBinary)); err != nil {
			return Built{}, fmt.Errorf("target %s packages %s, which is missing: build it first (mage image:build does): %w", target, HostBinary, err)
		}
	}
	id, err := buildStage(ctx, api, o, target, refs)
	if err != nil {
		return Built{}, err
	}
	return Built{ID: id, Refs: refs}, nil
}

// buildStage runs the engine's build of target with o's context, stamp and
// arguments, tagging the result with refs (none: untagged), and returns the
// image ID.
func buildStage(ctx context.Context, api BuildAPI, o BuildOptions, target string, refs []string) (string, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	args := o.Stamp.BuildArgs()
	for k, v := range o.BuildArgs {
		args[k] = &v
	}
	buildContext, err := Context(o.Dir, target)
	if err != nil {
		return "", fmt.Errorf("docker build: make the build context of %s: %w", o.Dir, err)
	}
	defer buildContext.Close()
	res, err := api.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags:        refs,
		Target:      target,
		Dockerfile:  Dockerfile,
		BuildArgs:   args,
		Labels:      o.Labels,
		NoCache:     o.NoCache,
		Remove:      true,
		ForceRemove: true, // intermediate containers go even when a step fails
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("docker build of %s (target %s): %w", o.Repository, target, err)
	}
	defer res.Body.Close()

	var id string
	err = readStream(res.Body, out, func(raw json.RawMessage) error {
		var a struct{ ID string }
		if json.Unmarshal(raw, &a) == nil && a.ID != "" {
			id = a.ID
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("docker build of %s (target %s) failed: %w", o.Repository, target, err)
	}
	if id == "" {
		return "", fmt.Errorf("docker build of %s (target %s): the engine reported no image ID", o.Repository, target)
	}
	return id, nil
}
