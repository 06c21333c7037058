package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	Repo   string // the checkout to measure; it is copied, never written
	Runs   int    // saves timed under Watch; 5 when 0
	GOARCH string // the engine's architecture
	Out    io.Writer
}

// BenchResult is what Bench measured.
type BenchResult struct {
	Cold, Warm time.Duration
	Saves      []time.Duration // save to served, one per run
}

// Bench measures the local stack in a copy of the repository, under a
// compose project and loopback ports of its own, and removes everything it
// made before it returns:
//
//   - cold: Up with an empty Go build cache (a temporary GOCACHE) and none
//     of the stack's images built; Postgres and Redis images are taken as
//     present (a first pull is the network's business);
//   - warm: Down, then Up again, nothing changed;
//   - save to served: under Watch, from writing a Go file to /version
//     answering with the new code, Runs times.
func Bench(ctx context.Context, o BenchOptions) (res BenchResult, err error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	runs := o.Runs
	if runs <= 0 {
		runs = 5
	}
	tmp, err := os.MkdirTemp("", "bench-dev-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	dir, gocache := filepath.Join(tmp, "repo"), filepath.Join(tmp, "gocache")
	if err := dockerimage.CopyRepo(ctx, o.Repo, dir); err != nil {
		return res, fmt.Errorf("copy %s: %w", o.Repo, err)
	}
	env, err := freePorts(ctx)
	if err != nil {
		return res, err
	}
	s := Stack{
		Dir: dir, Project: "devbench" + randomHex(), Env: env, GOARCH: o.GOARCH,
		Stamp: dockerimage.Stamp{Version: "dev"}, GoCache: gocache,
		Run: runner.Exec{Quiet: true, Stderr: out}, Out: out,
	}
	defer func() {
		if derr := s.Down(context.WithoutCancel(ctx), true); derr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", derr))
		}
	}()

	fmt.Fprintln(out, "bench: dev:up with an empty Go build cache (a few minutes on 2 cores)")
	start := time.Now()
	if _, err := s.Up(ctx); err != nil {
		return res, err
	}
	res.Cold = time.Since(start)
	if err := s.Down(ctx, false); err != nil {
		return res, err
	}
	fmt.Fprintln(out, "bench: dev:up again, nothing changed")
	start = time.Now()
	url, err := s.Up(ctx)
	if err != nil {
		return res, err
	}
	res.Warm = time.Since(start)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	reloaded := make(chan Reload, 1)
	watching := make(chan error, 1)
	go func() {
		watching <- s.Watch(wctx, WatchOptions{Reloaded: func(r Reload) { reloaded <- r }})
	}()
	time.Sleep(time.Second) // Watch takes its first snapshot
	for i := range runs {
		version := fmt.Sprintf("bench-%d", i+1)
		fmt.Fprintf(out, "bench: save %d of %d\n", i+1, runs)
		start := time.Now()
		if err := WriteVersionMarker(dir, version); err != nil {
			return res, err
		}
		served, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := WaitForVersion(served, url, version)
		cancel()
		if err != nil {
			return res, err
		}
		res.Saves = append(res.Saves, time.Since(start))
		if r := <-reloaded; r.Err != nil {
			return res, r.Err
		}
	}
	stop()
	return res, <-watching
}

// WriteTable prints the result as a table.
func (r BenchResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "local stack\ttime")
	fmt.Fprintf(tw, "dev:up, cold (empty Go build cache, no stack images)\t%s\n", seconds(r.Cold))
	fmt.Fprintf(tw, "dev:up, warm (nothing changed)\t%s\n", seconds(r.Warm))
	if len(r.Saves) > 0 {
		sorted := slices.Sorted(slices.Values(r.Saves))
		fmt.Fprintf(tw, "dev:watch, save to served (median of %d; min %s, max %s)\t%s\n",
			len(sorted), seconds(sorted[0]), seconds(sorted[len(sorted)-1]), seconds(dockerimage.Median(sorted)))
	}
	return tw.Flush()
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s" }

// freePorts are loopback ports for the stack's published ports, free a
// moment ago, as compose variables.
func freePorts(ctx context.Context) ([]string, error) {
	var env []string
	for _, name := range []string{"HTTP_PORT", "POSTGRES_PORT", "REDIS_PORT"} {
		l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		env = append(env, fmt.Sprintf("%s=%d", name, port))
	}
	return env, nil
}

func randomHex() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
