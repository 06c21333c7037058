package dockerimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/runner"
)

// RebuildOptions tune Reproduce and VerifyReproducible.
type RebuildOptions struct {
	Target string // TargetPrebuilt (the default; needs no engine) or TargetRuntime (needs Engine)
	// Platform of a prebuilt build; HostPlatform when zero. TargetRuntime
	// builds for the engine's platform.
	Platform Platform
	Getenv   func(string) string // for the stamp (REGISTRY, IMAGE_NAME, GITHUB_*, BUILDER_IMAGE); os.Getenv when nil
	Runner   runner.Runner       // runs go build; a quiet runner.Exec when nil
	Engine   Engine              // TargetRuntime only
	Out      io.Writer           // progress lines; discarded when nil
}

func (o RebuildOptions) defaults() RebuildOptions {
	if o.Target == "" {
		o.Target = TargetPrebuilt
	}
	if o.Platform == (Platform{}) {
		o.Platform = HostPlatform()
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Runner == nil {
		o.Runner = runner.Exec{Quiet: true}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return o
}

// Rebuilt is one build of a commit.
type Rebuilt struct {
	Commit string // the full commit id built
	Digest string // the image's manifest digest
	Stamp  Stamp
	Image  v1.Image
	Took   time.Duration
}

// Rebuild builds rev (a tag, branch or commit of the repository at repo)
// in a clean clone with an empty Go build cache, as image:build would have
// built it (target prebuilt, linux on this machine's architecture), and
// returns the image's digest: compared with the digest a registry or a
// deploy record holds, it says whether that image is what the commit
// makes. Same Go release needed: the binary's build information names it.
func Rebuild(ctx context.Context, repo, rev string) (string, error) {
	r, err := Reproduce(ctx, repo, rev, RebuildOptions{})
	return r.Digest, err
}

// Reproduce is Rebuild with options: git clone of repo into a temporary
// directory, checkout of rev (HEAD when empty), the stamp resolved in the
// clone as in the repository itself (the clone keeps the source's origin
// remote for it), the binary built with a fresh GOCACHE (prebuilt) or
// through the engine without its cache (runtime), and the image assembled.
// The clone and the cache are removed afterwards.
func Reproduce(ctx context.Context, repo, rev string, o RebuildOptions) (Rebuilt, error) {
	o = o.defaults()
	start := time.Now()
	if rev == "" {
		rev = "HEAD"
	}
	commit, err := runner.Output(ctx, runner.Command("git", "rev-parse", "--verify", "--quiet", rev+"^{commit}").InDir(repo))
	if err != nil {
		return Rebuilt{}, fmt.Errorf("rebuild %s: no such commit in %s", rev, repo)
	}
	tmp, err := os.MkdirTemp("", "image-rebuild-")
	if err != nil {
		return Rebuilt{}, err
	}
	defer os.RemoveAll(tmp)
	dir, gocache := filepath.Join(tmp, "src"), filepath.Join(tmp, "gocache")
	fmt.Fprintf(o.Out, "rebuild: cloning %s at %s into %s\n", repo, short(commit), dir)
	for _, c := range []runner.Cmd{
		runner.Command("git", "clone", "--quiet", "--no-checkout", repo, dir),
		runner.Command("git", "checkout", "--quiet", "--detach", commit).InDir(dir),
	} {
		if _, err := runner.Output(ctx, c); err != nil {
			return Rebuilt{}, fmt.Errorf("rebuild %s: %w", rev, err)
		}
	}
	plan, _, err := resolvePlan(ctx, dir, o.Target, o.Getenv, originURL(ctx, repo))
	if err != nil {
		return Rebuilt{}, fmt.Errorf("rebuild %s: %w", rev, err)
	}
	plan.GoCache, plan.NoCache, plan.Out = gocache, true, o.Out
	fmt.Fprintf(o.Out, "rebuild: building %s (%s) with an empty build cache\n", short(commit), o.Target)
	img, err := buildOnly(ctx, o, plan)
	if err != nil {
		return Rebuilt{}, fmt.Errorf("rebuild %s: %w", rev, err)
	}
	d, err := img.Digest()
	if err != nil {
		return Rebuilt{}, err
	}
	return Rebuilt{Commit: commit, Digest: d.String(), Stamp: plan.Stamp, Image: img, Took: time.Since(start)}, nil
}

// buildOnly makes the image of plan without loading it anywhere.
func buildOnly(ctx context.Context, o RebuildOptions, plan Plan) (v1.Image, error) {
	switch o.Target {
	case TargetPrebuilt:
		return AssembleHost(ctx, o.Runner, plan, o.Platform)
	case TargetRuntime:
		if o.Engine == nil {
			return nil, errors.New("the runtime target builds through the Docker engine: none given")
		}
		goos, goarch, err := EngineTarget(ctx, o.Engine)
		if err != nil {
			return nil, err
		}
		return assembleFromBuilder(ctx, o.Engine, plan, Platform{OS: goos, Architecture: goarch})
	}
	return nil, fmt.Errorf("build target %q: want %s or %s", o.Target, TargetPrebuilt, TargetRuntime)
}

// Comparison is what VerifyReproducible found.
type Comparison struct {
	Normal, Clean Rebuilt
}

// Same reports whether both builds gave one digest.
func (c Comparison) Same() bool { return c.Normal.Digest != "" && c.Normal.Digest == c.Clean.Digest }

// VerifyReproducible builds HEAD of the repository at repo twice and
// compares the digests: once as image:build does, in repo with the usual
// Go build cache (and the engine's cache for the runtime target), and once
// in a clean clone with an empty cache (Reproduce). A mismatch is an error
// that gives both digests and what differs (the binary, and then its Go
// release or build settings; or the configuration). A working tree with
// uncommitted changes is refused: HEAD would not be what was built.
func VerifyReproducible(ctx context.Context, repo string, o RebuildOptions) (Comparison, error) {
	o = o.defaults()
	facts, err := gitinfo.Read(ctx, repo, o.Getenv)
	if err != nil {
		return Comparison{}, err
	}
	if facts.Dirty() {
		return Comparison{}, fmt.Errorf("%s has uncommitted changes: commit or stash them first (a build of them cannot be reproduced from HEAD)", repo)
	}
	start := time.Now()
	plan, _, err := ResolvePlan(ctx, repo, o.Target, o.Getenv)
	if err != nil {
		return Comparison{}, err
	}
	plan.Out = o.Out
	fmt.Fprintf(o.Out, "rebuild: building %s (%s) in %s\n", short(facts.SHA), o.Target, repo)
	img, err := buildOnly(ctx, o, plan)
	if err != nil {
		return Comparison{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return Comparison{}, err
	}
	c := Comparison{Normal: Rebuilt{Commit: facts.SHA, Digest: d.String(), Stamp: plan.Stamp, Image: img, Took: time.Since(start)}}
	c.Clean, err = Reproduce(ctx, repo, facts.SHA, o)
	if err != nil {
		return c, err
	}
	if !c.Same() {
		return c, fmt.Errorf("not reproducible: %s built in %s is %s, in a clean clone %s; %s",
			short(facts.SHA), repo, c.Normal.Digest, c.Clean.Digest, Difference(c.Normal.Image, c.Clean.Image))
	}
	return c, nil
}

// Difference says, for people, what makes two images of the service
// differ: their /app (and then the binaries' Go release or build settings)
// or their configuration.
func Difference(a, b v1.Image) string {
	binA, errA := AppFromImage(a)
	binB, errB := AppFromImage(b)
	if errA != nil || errB != nil {
		return fmt.Sprintf("cannot read /app of both (%v; %v)", errA, errB)
	}
	if !bytes.Equal(binA, binB) {
		msg := fmt.Sprintf("/app differs (sha256 %x vs %x)", sha256.Sum256(binA), sha256.Sum256(binB))
		infoA, errA := buildinfo.Read(bytes.NewReader(binA))
		infoB, errB := buildinfo.Read(bytes.NewReader(binB))
		switch {
		case errA != nil || errB != nil:
		case infoA.GoVersion != infoB.GoVersion:
			msg += fmt.Sprintf(": built with %s and %s; the same Go release gives the same binary", infoA.GoVersion, infoB.GoVersion)
		case infoA.String() != infoB.String():
			msg += fmt.Sprintf(": the build information differs:\n%s\n---\n%s", infoA, infoB)
		default:
			msg += ": same Go release and build settings, so the compiler's output itself differs"
		}
		return msg
	}
	cfgA, _ := a.RawConfigFile()
	cfgB, _ := b.RawConfigFile()
	if !bytes.Equal(cfgA, cfgB) {
		return fmt.Sprintf("same /app, different configuration:\n%s\n---\n%s", indent(cfgA), indent(cfgB))
	}
	return "same /app and configuration, different layer bytes (the gzip compression differs)"
}

func indent(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

func short(sha string) string {
	if len(sha) > 7 && !strings.Contains(sha, ":") {
		return sha[:7]
	}
	return sha
}
