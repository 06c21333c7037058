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
// and fails when any does.
func RunSideBySide(ctx context.Context, suites ...gotest.Suite) error {
	lanes := make([][]gotest.Suite, len(suites))
	for i, s := range suites {
		lanes[i] = []gotest.Suite{s}
	}
	return RunLanes(ctx, lanes...)
}

// RunLanes runs the lanes at once and each lane's suites one after the
// other, and fails when any suite does; a lane stops at its first failure.
// The end-to-end suites mostly wait on Swarm's timers: the single-node one
// owns this machine's engine's Swarm, and everything else (unit and
// integration tests, the multi-node scenarios on engines of their own) can
// run beside it, so the whole takes about as long as the longest lane.
func RunLanes(ctx context.Context, lanes ...[]gotest.Suite) error {
	errs := make([]error, len(lanes))
	var wg sync.WaitGroup
	for i, lane := range lanes {
		wg.Go(func() {
			for _, s := range lane {
				if errs[i] = Run(ctx, s); errs[i] != nil {
					return
				}
			}
		})
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
