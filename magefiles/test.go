//go:build mage

package main

import (
	"context"

	"github.com/fractionate/service-template/magefiles/gotest"
	// mage:import test
	"github.com/fractionate/service-template/magefiles/testtargets"
)

// Runs every test: the single-node end-to-end suite (TEST_SWARM=1 lets it make the engine a Swarm) and, beside it, unit and integration tests then the multi-node scenarios (TEST_MULTINODE=1). Docker-backed tests skip with the reason when there is no engine (TEST_REQUIRE_DOCKER=1 makes that a failure, as in CI).
func Test(ctx context.Context) error {
	return testtargets.RunLanes(ctx, []gotest.Suite{gotest.E2E}, []gotest.Suite{gotest.All, gotest.Multinode})
}
