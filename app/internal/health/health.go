// Package health answers the two questions an orchestrator asks: is the
// process alive (always yes while it can answer) and can it serve traffic
// (its dependencies answer, and it is not shutting down).
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// an empty map means ready. The errors are for the log: they may name
// hosts, users and databases. Cause gives what a caller may see.
func (r *Readiness) Check(ctx context.Context) map[string]error {
	failures := make(map[string]error)
	if r.stopping.Load() {
		failures["shutdown"] = ErrShuttingDown
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
					err = fmt.Errorf("no answer within readiness.timeout (%s): %w", r.timeout, err)
				}
				mu.Lock()
				failures[name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures
}

// Cause is a short, fixed description of why a check failed ("timeout",
// "connection refused", ...), safe to show to anyone who can reach /ready:
// unlike the error, it never holds a user, database, host or port.
func Cause(err error) string {
	var timeout interface{ Timeout() bool }
	var dns *net.DNSError
	var sql interface{ SQLState() string }
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrShuttingDown):
		return ErrShuttingDown.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &timeout) && timeout.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection lost"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &dns):
		return "host not found"
	case errors.As(err, &sql):
		// Postgres error codes (SQLSTATE), by class where one will do.
		switch code := sql.SQLState(); {
		case strings.HasPrefix(code, "28"):
			return "authentication failed"
		case code == "3D000":
			return "database does not exist"
		case code == "53300":
			return "too many connections"
		case code == "57P03":
			return "starting up"
		case strings.HasPrefix(code, "57P"):
			return "server shutting down"
		}
	}
	return "unavailable"
}
