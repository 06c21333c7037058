// Package dockertest is the one rule every test that needs Docker follows,
// shared by the service's tests (app/) and the tooling's (magefiles/):
//
//   - its name starts with TestIntegration (TestE2E for an end-to-end
//     test, BenchmarkIntegration for a benchmark), which is how the test
//     targets tell the suites apart;
//   - it skips with the reason when no engine answers, or under -short;
//   - with TEST_REQUIRE_DOCKER=1 (CI sets it) it fails instead of skipping,
//     so a broken engine cannot turn the suite green.
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Prefix starts the name of every test that needs Docker.
const Prefix = "TestIntegration"

// BenchmarkPrefix starts the name of every benchmark that needs Docker; the
// test targets never run benchmarks, the bench targets name them.
const BenchmarkPrefix = "BenchmarkIntegration"

// E2EPrefix starts the name of every end-to-end test: they need Docker too,
// make the engine a Swarm (TEST_SWARM=1 opts in), and run apart, one
// package at a time, after the other tests (mage test:e2e).
const E2EPrefix = "TestE2E"

var (
	pingOnce sync.Once
	pingErr  error
)

// Require skips or fails t, as described in the package comment, unless a
// Docker engine answers.
func Require(t testing.TB) {
	t.Helper()
	if name, _, _ := strings.Cut(t.Name(), "/"); !namedForDocker(name) {
		t.Fatalf("%s needs Docker, so its name must start with %s (%s for an end-to-end test, %s for a benchmark)", name, Prefix, E2EPrefix, BenchmarkPrefix)
	}
	if testing.Short() {
		t.Skip("integration test: skipped in -short mode")
	}
	pingOnce.Do(func() { pingErr = ping() })
	if pingErr == nil {
		return
	}
	Missing(t, "integration test needs a Docker engine: "+pingErr.Error())
}

// namedForDocker reports whether a test or benchmark name tells the test
// targets that it needs Docker.
func namedForDocker(name string) bool {
	for _, p := range []string{Prefix, E2EPrefix, BenchmarkPrefix} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Missing skips t for want of something Docker-related, giving the reason,
// or fails it under TEST_REQUIRE_DOCKER=1.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("TEST_REQUIRE_DOCKER") == "1" {
		t.Fatal(reason + " (TEST_REQUIRE_DOCKER=1)")
	}
	t.Skip(reason)
}

func ping() error {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

// Unique returns a random suffix for the names of what a test creates
// (images, stacks, containers), so runs side by side never collide.
func Unique(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// FreePort returns a loopback TCP port that was free a moment ago: for a
// server a test starts, or a port it publishes.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
