package dockerimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// fakeBuilder answers ImageBuild with a canned stream and records the request.
type fakeBuilder struct {
	fakeVersion
	stream string
	err    error
	calls  int
	opts   client.ImageBuildOptions
	files  []string
}

func (f *fakeBuilder) ImageBuild(_ context.Context, r io.Reader, o client.ImageBuildOptions) (client.ImageBuildResult, error) {
	f.calls++
	f.opts = o
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		f.files = append(f.files, h.Name)
	}
	if f.err != nil {
		return client.ImageBuildResult{}, f.err
	}
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(f.stream))}, nil
}

// buildDir is a repository with the project's Dockerfile and .dockerignore.
func buildDir(t *testing.T, withBinary bool) string {
	t.Helper()
	root := repoRoot(t)
	files := map[string]string{"go.mod": "module x\n", "app/main.go": "package main\n"}
	for _, name := range []string{Dockerfile, ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	if withBinary {
		files[HostBinary] = "ELF"
	}
	dir := t.TempDir()
	writeTree(t, dir, files)
	return dir
}

const okStream = `{"stream":"Step 1/12 : FROM scratch\n"}
{"stream":" ---\u003e \n"}
{"aux":{"ID":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}}
{"stream":"Successfully built 111111111111\n"}
{"stream":"Successfully tagged ghcr.io/acme/api:abc1234\n"}
`

func TestBuild(t *testing.T) {
	dir := buildDir(t, true)
	stamp := Stamp{Version: "v1.2.3", Commit: "abc1234def", Created: time.Unix(1700000000, 0)}
	api := &fakeBuilder{stream: okStream}
	var out bytes.Buffer
	got, err := Build(context.Background(), api, BuildOptions{
		Dir: dir, Repository: "ghcr.io/acme/api", Tags: []string{"abc1234", "main", "latest"}, Stamp: stamp, Out: &out,
		BuildArgs: map[string]string{"BUILDER_IMAGE": "local/go:1.26", "VERSION": "override"},
		Labels:    map[string]string{"com.example.team": "payments"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "sha256:1111111111111111111111111111111111111111111111111111111111111111" {
		t.Errorf("ID = %q", got.ID)
	}
	wantRefs := []string{"ghcr.io/acme/api:abc1234", "ghcr.io/acme/api:main", "ghcr.io/acme/api:latest"}
	if !slices.Equal(got.Refs, wantRefs) || !slices.Equal(api.opts.Tags, wantRefs) {
		t.Errorf("refs = %q, request tags = %q; want %q in both", got.Refs, api.opts.Tags, wantRefs)
	}
	if api.opts.Target != TargetPrebuilt || api.opts.Dockerfile != Dockerfile || !api.opts.Remove || !api.opts.ForceRemove {
		t.Errorf("request = target %q dockerfile %q remove %v forceRemove %v", api.opts.Target, api.opts.Dockerfile, api.opts.Remove, api.opts.ForceRemove)
	}
	gotArgs := map[string]string{}
	for k, v := range api.opts.BuildArgs {
		gotArgs[k] = *v
	}
	wantArgs := map[string]string{"VERSION": "override", "COMMIT": "abc1234def", "CREATED": "2023-11-14T22:13:20Z", "BUILDER_IMAGE": "local/go:1.26"}
	if !maps.Equal(gotArgs, wantArgs) {
		t.Errorf("build args = %v, want %v (CREATED is the commit time)", gotArgs, wantArgs)
	}
	if api.opts.Labels["com.example.team"] != "payments" {
		t.Errorf("labels = %v", api.opts.Labels)
	}
	if !slices.Contains(api.files, HostBinary) || !slices.Contains(api.files, "app/main.go") {
		t.Errorf("context sent = %q", api.files)
	}
	if want := "Step 1/12 : FROM scratch\n"; !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "Successfully tagged") {
		t.Errorf("progress = %q", out.String())
	}
}

func TestBuildFailures(t *testing.T) {
	const failStream = `{"stream":"Step 2/12 : COPY bin/image/app /app\n"}
{"errorDetail":{"message":"COPY failed: file not found in build context or excluded by .dockerignore: stat bin/image/app: file does not exist"},"error":"COPY failed: file not found in build context or excluded by .dockerignore: stat bin/image/app: file does not exist"}
`
	tests := []struct {
		name       string
		withBinary bool
		target     string
		tags       []string
		api        *fakeBuilder
		wantErr    string
		wantCalls  int
	}{
		{
			name: "builder error verbatim", withBinary: true, tags: []string{"t"},
			api:     &fakeBuilder{stream: failStream},
			wantErr: "COPY failed: file not found in build context or excluded by .dockerignore: stat bin/image/app: file does not exist", wantCalls: 1,
		},
		{
			name: "legacy error field", withBinary: true, tags: []string{"t"},
			api:     &fakeBuilder{stream: `{"error":"The command '/bin/sh -c go build' returned a non-zero code: 1"}` + "\n"},
			wantErr: "returned a non-zero code: 1", wantCalls: 1,
		},
		{
			name: "request refused", withBinary: true, tags: []string{"t"},
			api:     &fakeBuilder{err: errors.New("Error response from daemon: dockerfile parse error")},
			wantErr: "dockerfile parse error", wantCalls: 1,
		},
		{
			name: "no image ID", withBinary: true, tags: []string{"t"},
			api:     &fakeBuilder{stream: `{"stream":"Step 1/1 : FROM scratch\n"}`},
			wantErr: "no image ID", wantCalls: 1,
		},
		{
			name: "unknown target", withBinary: true, target: "debug", tags: []string{"t"},
			api:     &fakeBuilder{stream: okStream},
			wantErr: `unknown build target "debug": ` + "%DIR%" + `/Dockerfile has the stages prebuilt, builder, runtime`,
		},
		{
			name: "prebuilt without the host binary", tags: []string{"t"},
			api:     &fakeBuilder{stream: okStream},
			wantErr: "packages bin/image/app, which is missing",
		},
		{
			name: "no tags", withBinary: true,
			api:     &fakeBuilder{stream: okStream},
			wantErr: "no tags",
		},
		{
			name: "invalid tag", withBinary: true, tags: []string{"a b"},
			api:     &fakeBuilder{stream: okStream},
			wantErr: `tag "ghcr.io/acme/api:a b"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := buildDir(t, tt.withBinary)
			_, err := Build(context.Background(), tt.api, BuildOptions{Dir: dir, Target: tt.target, Repository: "ghcr.io/acme/api", Tags: tt.tags})
			want := strings.ReplaceAll(tt.wantErr, "%DIR%", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want one containing %q", err, want)
			}
			if tt.api.calls != tt.wantCalls {
				t.Errorf("ImageBuild called %d times, want %d", tt.api.calls, tt.wantCalls)
			}
		})
	}
}
