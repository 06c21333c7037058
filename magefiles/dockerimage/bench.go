package dockerimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/runner"
)

// BenchAPI is what Bench needs of the engine client.
type BenchAPI interface {
	Engine
	ImageInspect(ctx context.Context, imageID string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageRemove(ctx context.Context, imageID string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

// BenchOptions configure Bench.
type BenchOptions struct {
	Repo string    // the repository to measure; it is copied, never written
	Runs int       // runs per scenario, reported as the median; 3 when 0
	Out  io.Writer // progress lines; discarded when nil
}

// BenchResult holds what Bench measured.
type BenchResult struct {
	BinarySize, ImageSize   int64
	Cold, OneLine, NoChange []time.Duration
}

// Bench measures image:build (host go build + engine build, target
// prebuilt) in a temporary copy of the repository:
//
//   - cold: no engine cache (NoCache) and an empty GOCACHE in a temp dir;
//   - one-line: after changing one line of the app's main package, with
//     the host's build cache and the engine's cache;
//   - no change: the same tree again.
//
// Every image it tags is removed before it returns.
func Bench(ctx context.Context, api BenchAPI, o BenchOptions) (res BenchResult, err error) {
	runs := o.Runs
	if runs <= 0 {
		runs = 3
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	dir, err := os.MkdirTemp("", "bench-image-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	if err := CopyRepo(ctx, o.Repo, dir); err != nil {
		return res, fmt.Errorf("copy %s: %w", o.Repo, err)
	}
	mainFile, err := oneLineTarget(dir)
	if err != nil {
		return res, err
	}
	original, err := os.ReadFile(mainFile)
	if err != nil {
		return res, err
	}

	const repository = "localhost/service-template-bench"
	var refs []string
	defer func() {
		for _, r := range refs {
			_, _ = api.ImageRemove(context.WithoutCancel(ctx), r, client.ImageRemoveOptions{PruneChildren: true})
		}
	}()
	quiet := runner.Exec{Quiet: true}
	stamp := Stamp{Version: "bench", Commit: "bench", Created: time.Unix(1700000000, 0)}
	build := func(tag string, noCache bool, goCache string) (time.Duration, Built, error) {
		refs = append(refs, repository+":"+tag)
		start := time.Now()
		b, err := BuildImage(ctx, quiet, api, Plan{
			Dir: dir, Repository: repository, Tags: []string{tag}, Stamp: stamp,
			NoCache: noCache, GoCache: goCache,
		})
		return time.Since(start), b, err
	}
	step := func(name string, i int, d time.Duration) {
		fmt.Fprintf(out, "bench: %s %d/%d: %s\n", name, i, runs, d.Round(10*time.Millisecond))
	}

	for i := 1; i <= runs; i++ {
		goCache, err := os.MkdirTemp("", "bench-gocache-")
		if err != nil {
			return res, err
		}
		d, _, err := build(fmt.Sprintf("cold-%d", i), true, goCache)
		_ = os.RemoveAll(goCache)
		if err != nil {
			return res, fmt.Errorf("cold build %d: %w", i, err)
		}
		res.Cold = append(res.Cold, d)
		step("cold", i, d)
	}

	// Sizes, and a warm cache for the runs that follow.
	_, warm, err := build("warm", false, "")
	if err != nil {
		return res, fmt.Errorf("warm-up build: %w", err)
	}
	inspect, err := api.ImageInspect(ctx, warm.ID)
	if err != nil {
		return res, fmt.Errorf("inspect %s: %w", warm.ID, err)
	}
	res.ImageSize = inspect.Size
	bin, err := os.Stat(filepath.Join(dir, HostBinary))
	if err != nil {
		return res, err
	}
	res.BinarySize = bin.Size()

	for i := 1; i <= runs; i++ {
		// A different line each run, one the linker keeps, so the binary
		// and therefore the image layer really change.
		line := fmt.Sprintf("\nvar benchImageLine []int; func init() { benchImageLine = append(benchImageLine, %d) }\n", time.Now().UnixNano())
		if err := os.WriteFile(mainFile, append(slices.Clip(original), line...), 0o644); err != nil {
			return res, err
		}
		d, b, err := build(fmt.Sprintf("oneline-%d", i), false, "")
		if err != nil {
			return res, fmt.Errorf("one-line build %d: %w", i, err)
		}
		if b.ID == warm.ID {
			return res, fmt.Errorf("one-line build %d gave the unchanged image %s: the change did not reach the binary", i, b.ID)
		}
		res.OneLine = append(res.OneLine, d)
		step("one-line change", i, d)
	}

	var previous string
	for i := 1; i <= runs; i++ {
		d, b, err := build(fmt.Sprintf("nochange-%d", i), false, "")
		if err != nil {
			return res, fmt.Errorf("no-change build %d: %w", i, err)
		}
		if previous != "" && b.ID != previous {
			return res, fmt.Errorf("no-change build %d gave image %s, the one before %s: the build is not reproducible", i, b.ID, previous)
		}
		previous = b.ID
		res.NoChange = append(res.NoChange, d)
		step("no change", i, d)
	}
	return res, nil
}

// oneLineTarget is the file the one-line change goes into: app/main.go, or
// else the first non-test Go file of ./app.
func oneLineTarget(dir string) (string, error) {
	if p := filepath.Join(dir, "app", "main.go"); fileExists(p) {
		return p, nil
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "app", "*.go"))
	for _, m := range matches {
		if !strings.HasSuffix(m, "_test.go") {
			return m, nil
		}
	}
	return "", fmt.Errorf("no Go file in %s to change", filepath.Join(dir, "app"))
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Median of ds; 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteTable prints r for people.
func (r BenchResult) WriteTable(w io.Writer) error {
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %12s %9s\n", "size", "bytes", "MiB")
	fmt.Fprintf(&b, "%-28s %12d %9.2f\n", "static binary", r.BinarySize, mib(r.BinarySize))
	fmt.Fprintf(&b, "%-28s %12d %9.2f\n", "image", r.ImageSize, mib(r.ImageSize))
	fmt.Fprintf(&b, "%-28s %12d %9.2f\n\n", "image - binary", r.ImageSize-r.BinarySize, mib(r.ImageSize-r.BinarySize))
	fmt.Fprintf(&b, "%-28s %12s %9s   %s\n", fmt.Sprintf("image:build, median of %d", len(r.Cold)), "seconds", "× cold", "runs (s)")
	cold := Median(r.Cold)
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"cold", r.Cold}, {"one-line change", r.OneLine}, {"no change", r.NoChange}} {
		m := Median(row.ds)
		ratio := "-"
		if cold > 0 {
			ratio = fmt.Sprintf("%.3f", float64(m)/float64(cold))
		}
		var all []string
		for _, d := range row.ds {
			all = append(all, fmt.Sprintf("%.2f", d.Seconds()))
		}
		fmt.Fprintf(&b, "%-28s %12.2f %9s   %s\n", row.name, m.Seconds(), ratio, strings.Join(all, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
