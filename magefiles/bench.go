//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/devstack"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Bench measures the build tooling.
type Bench mg.Namespace

// Image prints image vs binary size and image:build times (cold, one-line change, no change; median of -runs=N, default 3).
func (Bench) Image(ctx context.Context, runs *int) error {
	n := 3
	if runs != nil {
		n = *runs
	}
	cli, err := dockerEngine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	res, err := dockerimage.Bench(ctx, cli, dockerimage.BenchOptions{Repo: ".", Runs: n, Out: os.Stderr})
	if err != nil {
		return err
	}
	return res.WriteTable(os.Stdout)
}

// Deploy compares deploy:to with docker stack deploy on a Swarm of its own (production timings; TEST_SWARM=1): wall time, Swarm's own update time, exit against Swarm's end, failed requests.
func (Bench) Deploy(ctx context.Context) error {
	if os.Getenv("TEST_SWARM") != "1" {
		return fmt.Errorf("bench:deploy makes this engine a single-node Swarm for about ten minutes (and leaves it afterwards): set TEST_SWARM=1 to allow it")
	}
	return exec().Run(ctx, runner.Command("go", "test", "-count=1", "-run", "^$", "-bench", "^BenchmarkE2EDeploy$", "-benchtime", "1x", "-timeout", "40m", "./magefiles/deploy"))
}

// Metrics prints the service's HTTP layer, metrics on, against a bare net/http handler on loopback: /health and GET /v1/notes on Postgres, req/s and p99 at 8 in flight, medians of -runs=N alternating runs of 2 s (default 7).
func (Bench) Metrics(ctx context.Context, runs *int) error {
	n := 7
	if runs != nil {
		n = *runs
	}
	return exec().Run(ctx, runner.Command("go", "test", "-count=1", "-run", "^$", "-bench", "^BenchmarkIntegrationMetricsCost$",
		"-benchtime", "1x", "./app", "-args", "-metricscost.rounds="+strconv.Itoa(n)))
}

// Dev prints dev:up times (cold and warm build cache) and dev:watch's save-to-served time (median of -runs=N, default 5), in a copy of the checkout.
func (Bench) Dev(ctx context.Context, runs *int) error {
	n := 5
	if runs != nil {
		n = *runs
	}
	if err := devstack.CheckCompose(ctx); err != nil {
		return err
	}
	cli, err := dockerEngine(ctx)
	if err != nil {
		return err
	}
	_, goarch, err := dockerimage.EngineTarget(ctx, cli)
	_ = cli.Close()
	if err != nil {
		return err
	}
	res, err := devstack.Bench(ctx, devstack.BenchOptions{Repo: ".", Runs: n, GOARCH: goarch, Out: os.Stderr})
	if err != nil {
		return err
	}
	return res.WriteTable(os.Stdout)
}
