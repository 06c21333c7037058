//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/gotest"
)

// Test runs the test suites. Integration tests need a Docker engine; they
// skip with the reason when there is none (TEST_REQUIRE_DOCKER=1 makes that
// a failure, as in CI).
type Test mg.Namespace

// All runs unit, integration and end-to-end tests (`mage test`); the end-to-end ones only with TEST_SWARM=1.
func (Test) All(ctx context.Context) error {
	if err := exec().Run(ctx, gotest.Command(gotest.All, testOptions())); err != nil {
		return err
	}
	return exec().Run(ctx, gotest.Command(gotest.E2E, testOptions()))
}

// E2E runs the end-to-end deploy tests on a Swarm of their own (TEST_SWARM=1 lets them make the engine one; they leave it after).
func (Test) E2E(ctx context.Context) error {
	return exec().Run(ctx, gotest.Command(gotest.E2E, testOptions()))
}

// Unit runs the tests that need no Docker (go test -short).
func (Test) Unit(ctx context.Context) error {
	return exec().Run(ctx, gotest.Command(gotest.Unit, testOptions()))
}

// Integration runs only the tests against real containers (TestIntegration*).
func (Test) Integration(ctx context.Context) error {
	return exec().Run(ctx, gotest.Command(gotest.Integration, testOptions()))
}

func testOptions() gotest.Options {
	return gotest.Options{
		Verbose:       mg.Verbose(),
		Race:          os.Getenv("TEST_RACE") == "1",
		RequireDocker: os.Getenv("TEST_REQUIRE_DOCKER") == "1",
	}
}
