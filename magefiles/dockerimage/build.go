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
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/runner"
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
	ID   string   // image ID, sha256:...
	Refs []string // repository:tag for each tag, all pointing at ID
}

// Build builds the image through the engine's API (the classic builder; no
// `docker build` process) and tags it with every tag in one request, so a
// failed build tags nothing. An unknown target fails before the engine is
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
		return Built{}, fmt.Errorf("docker build: make the build context of %s: %w", o.Dir, err)
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
		return Built{}, fmt.Errorf("docker build of %s (target %s): %w", o.Repository, target, err)
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
		return Built{}, fmt.Errorf("docker build of %s (target %s) failed: %w", o.Repository, target, err)
	}
	if id == "" {
		return Built{}, fmt.Errorf("docker build of %s (target %s): the engine reported no image ID", o.Repository, target)
	}
	return Built{ID: id, Refs: refs}, nil
}

// Engine is what BuildImage needs of the engine client.
type Engine interface {
	BuildAPI
	VersionAPI
}

// Plan is an image build from a repository: for TargetPrebuilt, the host
// build of the binary, then the image build.
type Plan struct {
	Dir        string
	Target     string // TargetPrebuilt when empty
	Repository string
	Tags       []string
	Stamp      Stamp
	BuildArgs  map[string]string // more build arguments, e.g. BUILDER_IMAGE
	NoCache    bool              // no engine cache
	GoCache    string            // GOCACHE for the host build; the host's when empty
	Out        io.Writer
}

// BuildImage runs a Plan: go build on the host through r (prebuilt only; the
// binary targets the engine's platform), then Build.
func BuildImage(ctx context.Context, r runner.Runner, api Engine, p Plan) (Built, error) {
	target := or(p.Target, TargetPrebuilt)
	if err := checkTarget(filepath.Join(p.Dir, Dockerfile), target); err != nil {
		return Built{}, err
	}
	if target == TargetPrebuilt {
		goos, goarch, err := EngineTarget(ctx, api)
		if err != nil {
			return Built{}, err
		}
		cmd, err := GoBuild{Dir: p.Dir, GOOS: goos, GOARCH: goarch, Stamp: p.Stamp, GoCache: p.GoCache}.Cmd()
		if err != nil {
			return Built{}, err
		}
		if err := r.Run(ctx, cmd); err != nil {
			return Built{}, fmt.Errorf("build the binary for the image: %w", err)
		}
	}
	return Build(ctx, api, BuildOptions{
		Dir: p.Dir, Target: target, Repository: p.Repository, Tags: p.Tags,
		Stamp: p.Stamp, BuildArgs: p.BuildArgs, NoCache: p.NoCache, Out: p.Out,
	})
}
