package dockerimage

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/runner"
)

// BuildInfoPackage is where the binary keeps its stamp (see ldflags).
const BuildInfoPackage = "github.com/fractionate/service-template/app/internal/buildinfo"

// GoBuild plans the host build of the binary the prebuilt stage packages.
type GoBuild struct {
	Dir     string // module root; the command runs there
	Package string // "./app" when empty
	Output  string // HostBinary when empty
	GOOS    string // "linux" when empty
	GOARCH  string // the engine's architecture (EngineTarget); required
	Stamp   Stamp
	// GoCache overrides GOCACHE; empty keeps the host's build cache, which
	// is what makes a rebuild after a small change fast.
	GoCache string
}

// LDFlags are the linker flags of both builds (host and Dockerfile): strip
// the symbol table and DWARF, and stamp buildinfo.
func LDFlags(s Stamp) string {
	return strings.Join([]string{
		"-s", "-w",
		"-X", BuildInfoPackage + ".Version=" + s.Version,
		"-X", BuildInfoPackage + ".Commit=" + s.Commit,
		"-X", BuildInfoPackage + ".Date=" + s.CreatedString(),
	}, " ")
}

// Cmd is the planned command: a static (CGO_ENABLED=0), path-free
// (-trimpath) build for the engine's platform. -buildvcs=false because the
// stamp travels in -ldflags and the Dockerfile's builder, which has no .git,
// must produce the same binary.
func (g GoBuild) Cmd() (runner.Cmd, error) {
	if g.GOARCH == "" {
		return runner.Cmd{}, fmt.Errorf("go build plan: GOARCH is required (the engine's architecture)")
	}
	pkg, out, goos := or(g.Package, "./app"), or(g.Output, HostBinary), or(g.GOOS, "linux")
	c := runner.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", LDFlags(g.Stamp), "-o", out, pkg).
		InDir(g.Dir).
		WithEnv("CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+g.GOARCH)
	if g.GoCache != "" {
		c = c.WithEnv("GOCACHE=" + g.GoCache)
	}
	return c, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// VersionAPI is the part of the engine client EngineTarget needs.
type VersionAPI interface {
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
}

// EngineTarget is the engine's GOOS and GOARCH: what the host build targets
// so the image runs where it is built.
func EngineTarget(ctx context.Context, api VersionAPI) (goos, goarch string, err error) {
	v, err := api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", "", fmt.Errorf("ask the Docker engine for its platform: %w", err)
	}
	if v.Os == "" || v.Arch == "" {
		return "", "", fmt.Errorf("the Docker engine did not report its platform (os %q, arch %q)", v.Os, v.Arch)
	}
	return v.Os, v.Arch, nil
}
