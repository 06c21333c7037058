// Package health answers the two questions an orchestrator asks: is the
// process alive (always yes while it can answer) and can it serve traffic
// (its dependencies answer, and it is not shutting down).
package health

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Check probes one dependency; it must respect ctx's deadline.
type Check func(ctx context.Context) error

// Readiness runs the dependency checks.
type Readiness struct {
	timeout  time.Duration
	checks   map[string]Check
	stopping atomic.Bool
}

// NewReadiness returns a Readiness that gives each check timeout.
func NewReadiness(timeout time.Duration, checks map[string]Check) *Readiness {
	return &Readiness{timeout: timeout, checks: maps.Clone(checks)}
}

// ErrShuttingDown is reported once shutdown has begun.
var ErrShuttingDown = errors.New("shutting down")

// BeginShutdown makes every later Check fail, so load balancers drain this
// instance while in-flight requests finish.
func (r *Readiness) BeginShutdown() { r.stopping.Store(true) }

// Check runs every check concurrently and returns the failures by name;
// an empty map means ready.
func (r *Readiness) Check(ctx context.Context) map[string]string {
	failures := make(map[string]string)
	if r.stopping.Load() {
		failures["shutdown"] = ErrShuttingDown.Error()
		return failures
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range slices.Sorted(maps.Keys(r.checks)) {
		check := r.checks[name]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			// A check that ignores its deadline must not hold /ready: stop
			// waiting at the deadline and leave it to finish on its own.
			result := make(chan error, 1)
			go func() { result <- check(ctx) }()
			var err error
			select {
			case err = <-result:
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					err = errors.New("timed out after " + r.timeout.String())
				}
				mu.Lock()
				failures[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures
}
