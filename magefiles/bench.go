//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/dockerimage"
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
