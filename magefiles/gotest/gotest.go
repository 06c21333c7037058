// Package gotest plans the `go test` runs behind the test targets.
//
// Tests that need Docker are named TestIntegration... and skip themselves
// under -short, so the split needs no build tags: unit runs -short,
// integration selects by name, and the full run takes everything in one
// compile. End-to-end tests (TestE2E...) may make this machine's engine a
// Swarm: they run one package at a time, in a go test process of their own;
// nothing else touches that engine's Swarm state, so the other suites (and
// the multi-node scenarios, TestE2EMultinode..., on engines of their own)
// can run beside them.
package gotest

import (
	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Suite is a set of tests.
type Suite int

// The suites.
const (
	All Suite = iota
	Unit
	Integration
	E2E
	Multinode
)

// multinodePrefix starts the multi-node scenarios' names.
const multinodePrefix = "TestE2EMultinode"

// e2eTimeout bounds the end-to-end suite: minutes of rollouts, and the
// clean-up must still run within it.
const e2eTimeout = "45m"

// Options tune a run.
type Options struct {
	Packages []string // default ./...
	Race     bool
	Verbose  bool
	// RequireDocker makes Docker-backed tests fail instead of skipping when
	// no engine answers; CI sets it so a broken engine cannot pass as green.
	RequireDocker bool
}

// Command returns the go test invocation for s.
func Command(s Suite, o Options) runner.Cmd {
	args := []string{"test"}
	switch s {
	case Unit:
		args = append(args, "-short")
	case Integration:
		args = append(args, "-count=1", "-run", "^"+dockertest.Prefix)
	case E2E:
		args = append(args, "-count=1", "-p", "1", "-timeout", e2eTimeout, "-run", "^"+dockertest.E2EPrefix, "-skip", "^"+multinodePrefix)
	case Multinode:
		args = append(args, "-count=1", "-timeout", e2eTimeout, "-run", "^"+multinodePrefix)
	default:
		// Integration tests talk to real containers, which go test's
		// result cache cannot see: never trust a cached pass.
		args = append(args, "-count=1", "-skip", "^"+dockertest.E2EPrefix)
	}
	if o.Race {
		args = append(args, "-race")
	}
	if o.Verbose {
		args = append(args, "-v")
	}
	pkgs := o.Packages
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	cmd := runner.Command("go", append(args, pkgs...)...)
	if o.RequireDocker && s != Unit {
		cmd = cmd.WithEnv("TEST_REQUIRE_DOCKER=1")
	}
	return cmd
}
