package dockerimage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/runner"
)

func TestGoBuildCmd(t *testing.T) {
	stamp := Stamp{Version: "v1.2.3", Commit: "0123456789abcdef", Created: time.Unix(1700000000, 0)}
	const bi = "github.com/fractionate/service-template/app/internal/buildinfo"
	ldflags := "-s -w -X " + bi + ".Version=v1.2.3 -X " + bi + ".Commit=0123456789abcdef -X " + bi + ".Date=2023-11-14T22:13:20Z"
	tests := []struct {
		name string
		in   GoBuild
		want runner.Cmd
	}{
		{
			name: "defaults, host build cache",
			in:   GoBuild{Dir: "/repo", GOARCH: "amd64", Stamp: stamp},
			want: runner.Cmd{
				Name: "go",
				Args: []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", "bin/image/app", "./app"},
				Dir:  "/repo",
				Env:  []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
			},
		},
		{
			name: "arm64 engine, own cache",
			in:   GoBuild{Dir: "/repo", GOARCH: "arm64", Stamp: stamp, GoCache: "/tmp/cache", Output: "out/app", Package: "./cmd/x"},
			want: runner.Cmd{
				Name: "go",
				Args: []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", "out/app", "./cmd/x"},
				Dir:  "/repo",
				Env:  []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOCACHE=/tmp/cache"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Cmd()
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want.Name || got.Dir != tt.want.Dir || !slices.Equal(got.Args, tt.want.Args) || !slices.Equal(got.Env, tt.want.Env) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
	if _, err := (GoBuild{Dir: "/repo"}).Cmd(); err == nil || !strings.Contains(err.Error(), "GOARCH") {
		t.Errorf("no GOARCH: err = %v, want one naming GOARCH", err)
	}
}

type fakeVersion struct {
	os, arch string
	err      error
}

func (f fakeVersion) ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return client.ServerVersionResult{Os: f.os, Arch: f.arch}, f.err
}

func TestEngineTarget(t *testing.T) {
	goos, goarch, err := EngineTarget(context.Background(), fakeVersion{os: "linux", arch: "arm64"})
	if err != nil || goos != "linux" || goarch != "arm64" {
		t.Errorf("EngineTarget = %q, %q, %v", goos, goarch, err)
	}
	if _, _, err := EngineTarget(context.Background(), fakeVersion{err: errors.New("boom")}); err == nil {
		t.Error("engine error: no error")
	}
	if _, _, err := EngineTarget(context.Background(), fakeVersion{os: "linux"}); err == nil {
		t.Error("no arch: no error")
	}
}
