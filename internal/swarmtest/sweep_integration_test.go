package swarmtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// A bed whose owner died (its lock gone, all else left) is swept whole by
// SweepStale; a bed whose owner lives is not touched.
func TestIntegrationSweepStale(t *testing.T) {
	live := Start(t, Options{Managers: 1, Workers: 1})
	crashed := Start(t, Options{Managers: 1, Workers: 1})
	// The owner of crashed dies: the kernel drops its lock, nothing else.
	// (Its own teardown must then leave the number alone.)
	crashed.closeOnce.Do(func() {})
	crashed.closed = true
	unregister(crashed)
	_ = crashed.lock.Close()
	crashed.lock = nil
	if len(crashed.l.leftovers()) == 0 {
		t.Fatal("the crashed bed shows no traces to sweep")
	}

	swept, err := SweepStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(swept, crashed.Name) || slices.Contains(swept, live.Name) {
		t.Errorf("swept %v, want %s and not %s", swept, crashed.Name, live.Name)
	}
	if left := crashed.l.leftovers(); len(left) > 0 {
		t.Errorf("the sweep left %v", left)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, n := range live.Nodes {
		if _, err := live.Client(n).Ping(ctx, client.PingOptions{}); err != nil {
			t.Errorf("%s of the live bed after the sweep: %v", n.Name, err)
		}
	}
	if _, _, err := live.Manager(ctx); err != nil {
		t.Errorf("the live bed's Swarm after the sweep: %v", err)
	}
}
