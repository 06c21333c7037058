// Package testtargets holds the test:* targets. The magefile imports it
// under the name test (// mage:import test), which leaves `test` itself
// free to be a target of its own: the README's test command, listed by
// go tool mage -l like any other.
package testtargets

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/gotest"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Runs the tests that need no Docker (go test -short).
func Unit(ctx context.Context) error { return Run(ctx, gotest.Unit) }

// Runs only the tests against real containers (TestIntegration*).
func Integration(ctx context.Context) error { return Run(ctx, gotest.Integration) }

// Runs the end-to-end deploy tests on a Swarm of their own (TEST_SWARM=1 lets them make the engine one; they leave it after).
func E2e(ctx context.Context) error { return Run(ctx, gotest.E2E) }

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
