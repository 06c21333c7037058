//go:build mage

package main

import (
	"context"

	"github.com/fractionate/service-template/magefiles/gotest"
	// mage:import test
	"github.com/fractionate/service-template/magefiles/testtargets"
)

// Runs every test: unit and integration, then end-to-end (TEST_SWARM=1: a single-node Swarm; TEST_MULTINODE=1: multi-node test beds, side by side). Docker-backed tests skip with the reason when there is no engine (TEST_REQUIRE_DOCKER=1 makes that a failure, as in CI).
func Test(ctx context.Context) error {
	if err := testtargets.Run(ctx, gotest.All); err != nil {
		return err
	}
	return testtargets.RunSideBySide(ctx, gotest.E2E, gotest.Multinode)
}
