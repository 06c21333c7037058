// Package testtargets holds the test:* targets. The magefile imports it
// under the name test (// mage:import test), which leaves `test` itself
// free to be a target of its own: the README's test command, listed by
// go tool mage -l like any other.
package testtargets

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/gotest"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Runs the tests that need no Docker (go test -short).
func Unit(ctx context.Context) error { return Run(ctx, gotest.Unit) }

// Runs only the tests against real containers (TestIntegration*).
func Integration(ctx context.Context) error { return Run(ctx, gotest.Integration) }

// Runs the end-to-end deploy tests: on a single-node Swarm of their own (TEST_SWARM=1 lets them make the engine one; they leave it after) and, side by side, on multi-node test beds (TEST_MULTINODE=1).
func E2e(ctx context.Context) error { return RunSideBySide(ctx, gotest.E2E, gotest.Multinode) }

// RunSideBySide runs suites at once, each in a go test process of its own,
// and fails when any does. The multi-node scenarios mostly wait on Swarm's
// timers, as the single-node ones do, and leave this machine's engine
// alone: together they take about as long as the longer of the two.
func RunSideBySide(ctx context.Context, suites ...gotest.Suite) error {
	errs := make([]error, len(suites))
	var wg sync.WaitGroup
	for i, s := range suites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Run(ctx, s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run runs one suite with the options the environment sets: TEST_RACE=1
// adds -race, TEST_REQUIRE_DOCKER=1 turns a skip for want of Docker into a
// failure.
func Run(ctx context.Context, s gotest.Suite) error {
	o := gotest.Options{
		Verbose:       mg.Verbose(),
		Race:          os.Getenv("TEST_RACE") == "1",
		RequireDocker: os.Getenv("TEST_REQUIRE_DOCKER") == "1",
	}
	return runner.Verbose(mg.Verbose()).Run(ctx, gotest.Command(s, o))
}
