package dockerimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/runner"
)

// fakeEngine adds to fakeBuilder what BuildImage needs besides a build:
// loading images and copying a file out of a container.
type fakeEngine struct {
	*fakeBuilder
	builderApp    []byte   // what /out/app holds in the builder stage
	created       []string // images containers were created from
	removed       []string // containers removed
	removedImages []string
	loaded        []string // tags of loaded images
	loadedCfg     []byte   // the configuration of the last loaded image
	loadErr       error
}

func (f *fakeEngine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.created = append(f.created, o.Image)
	return client.ContainerCreateResult{ID: "c1"}, nil
}

func (f *fakeEngine) CopyFromContainer(_ context.Context, id string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	if o.SourcePath != BuilderOutput {
		return client.CopyFromContainerResult{}, errors.New("no such file " + o.SourcePath)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(f.builderApp))})
	_, _ = tw.Write(f.builderApp)
	_ = tw.Close()
	return client.CopyFromContainerResult{Content: io.NopCloser(&buf)}, nil
}

func (f *fakeEngine) ImageRemove(_ context.Context, id string, _ client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	f.removedImages = append(f.removedImages, id)
	return client.ImageRemoveResult{}, nil
}

func (f *fakeEngine) ContainerRemove(_ context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.removed = append(f.removed, id)
	return client.ContainerRemoveResult{}, nil
}

// ImageLoad reads a `docker save` tarball as the engine would: the tags and
// the configuration from manifest.json.
func (f *fakeEngine) ImageLoad(_ context.Context, r io.Reader, _ ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct {
		Config   string
		RepoTags []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		return nil, errors.New("bad tarball")
	}
	f.loaded = append(f.loaded, manifest[0].RepoTags...)
	f.loadedCfg = files[manifest[0].Config]
	return io.NopCloser(strings.NewReader(`{"stream":"Loaded image: x\n"}` + "\n")), nil
}

func newFakeEngine(arch string) *fakeEngine {
	return &fakeEngine{fakeBuilder: &fakeBuilder{stream: okStream, fakeVersion: fakeVersion{os: "linux", arch: arch}}}
}

// The runtime target takes the binary from the builder stage (built
// untagged) and assembles the image around it; nothing runs on the host.
func TestBuildImageRuntimeTarget(t *testing.T) {
	dir := buildDir(t, false)
	api := newFakeEngine("amd64")
	api.builderApp = []byte("ELF from the builder")
	rec := &runner.Recorder{}
	stamp := Stamp{Version: "v1.0.0", Commit: "abc", Created: time.Unix(1700000000, 0)}
	b, err := BuildImage(context.Background(), rec, api, Plan{Dir: dir, Target: TargetRuntime, Repository: "ghcr.io/acme/api", Tags: []string{"t"}, Stamp: stamp})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Cmds) != 0 {
		t.Errorf("runtime target ran %q on the host", rec.Lines())
	}
	if api.opts.Target != BuilderStage || len(api.opts.Tags) != 0 || !slices.Contains(api.files, HostBinary) {
		t.Errorf("engine build: target %q tags %q, context %q; want the builder stage, untagged", api.opts.Target, api.opts.Tags, api.files)
	}
	wantID := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	if !slices.Equal(api.created, []string{wantID}) || !slices.Equal(api.removed, []string{"c1"}) {
		t.Errorf("containers created from %q, removed %q", api.created, api.removed)
	}
	if len(api.removedImages) != 0 {
		t.Errorf("removed %q: a cached build's stage is the next build's cache", api.removedImages)
	}
	app, err := AppFromImage(b.Image)
	if err != nil || string(app) != "ELF from the builder" {
		t.Errorf("/app = %q (%v)", app, err)
	}
	want, _ := AssembleBytes([]byte("ELF from the builder"), stamp, Platform{"linux", "amd64"})
	wantDigest, _ := want.Digest()
	if b.Digest != wantDigest.String() {
		t.Errorf("digest %s, want the assembled %s", b.Digest, wantDigest)
	}
	if !slices.Equal(api.loaded, []string{"ghcr.io/acme/api:t"}) {
		t.Errorf("loaded %q", api.loaded)
	}
	cfgName, _ := b.Image.ConfigName()
	if b.ID != cfgName.String() {
		t.Errorf("ID %s, want the configuration's digest %s", b.ID, cfgName)
	}
}

// A clean (NoCache) build of the builder stage is nobody's cache: removed.
func TestBuildImageRuntimeWithoutCacheRemovesTheStage(t *testing.T) {
	api := newFakeEngine("amd64")
	api.builderApp = []byte("ELF")
	_, err := BuildImage(context.Background(), &runner.Recorder{}, api, Plan{Dir: buildDir(t, false), Target: TargetRuntime, Repository: "ghcr.io/acme/api", Tags: []string{"t"}, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if !api.opts.NoCache || !slices.Equal(api.removedImages, []string{"sha256:1111111111111111111111111111111111111111111111111111111111111111"}) {
		t.Errorf("NoCache %v, removed %q", api.opts.NoCache, api.removedImages)
	}
}

func TestBuildImagePlansTheHostBuild(t *testing.T) {
	dir := buildDir(t, true)
	api := newFakeEngine("arm64")
	rec := &runner.Recorder{}
	b, err := BuildImage(context.Background(), rec, api, Plan{Dir: dir, Repository: "ghcr.io/acme/api", Tags: []string{"t", "u"}, GoCache: "/tmp/c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Cmds) != 1 {
		t.Fatalf("ran %q, want one go build", rec.Lines())
	}
	c := rec.Cmds[0]
	if c.Dir != dir || !slices.Contains(c.Env, "GOARCH=arm64") || !slices.Contains(c.Env, "GOCACHE=/tmp/c") || c.Args[len(c.Args)-1] != "./app" {
		t.Errorf("go build = %s", c)
	}
	if api.calls != 0 {
		t.Error("prebuilt asked the engine for a Dockerfile build")
	}
	slices.Sort(api.loaded) // the tarball lists a manifest's tags in no particular order
	if !slices.Equal(api.loaded, []string{"ghcr.io/acme/api:t", "ghcr.io/acme/api:u"}) || !slices.Equal(b.Refs, api.loaded) {
		t.Errorf("loaded %q, refs %q", api.loaded, b.Refs)
	}
	var cfg struct{ Architecture, OS string }
	if err := json.Unmarshal(api.loadedCfg, &cfg); err != nil || cfg.Architecture != "arm64" || cfg.OS != "linux" {
		t.Errorf("loaded configuration %s (%v), want linux/arm64", api.loadedCfg, err)
	}

	// A failed go build stops before the engine is asked.
	api = newFakeEngine("arm64")
	rec = &runner.Recorder{FailOn: func(runner.Cmd) error { return errors.New("go build failed") }}
	if _, err := BuildImage(context.Background(), rec, api, Plan{Dir: dir, Repository: "ghcr.io/acme/api", Tags: []string{"t"}}); err == nil {
		t.Error("failed go build: no error")
	}
	if len(api.loaded) != 0 {
		t.Error("failed go build: an image was loaded anyway")
	}
}

func TestBuildImageRefusals(t *testing.T) {
	tests := []struct {
		name, target string
		tags         []string
		loadErr      error
		wantErr      string
	}{
		{name: "unknown target", target: "debug", tags: []string{"t"}, wantErr: `unknown build target "debug"`},
		{name: "builder is no image", target: BuilderStage, tags: []string{"t"}, wantErr: "assembled around the binary of prebuilt or runtime"},
		{name: "no tags", wantErr: "no tags"},
		{name: "invalid tag", tags: []string{"a b"}, wantErr: `tag "ghcr.io/acme/api:a b"`},
		{name: "engine refuses the load", tags: []string{"t"}, loadErr: errors.New("no space left on device"), wantErr: "load the image into the engine: no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeEngine("amd64")
			api.loadErr = tt.loadErr
			rec := &runner.Recorder{}
			_, err := BuildImage(context.Background(), rec, api, Plan{Dir: buildDir(t, true), Target: tt.target, Repository: "ghcr.io/acme/api", Tags: tt.tags})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.loadErr == nil && len(rec.Cmds) != 0 {
				t.Errorf("ran %q before refusing", rec.Lines())
			}
		})
	}
}
