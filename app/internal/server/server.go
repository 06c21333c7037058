// Package server runs an http.Server until its context ends, then shuts it
// down in the order load balancers need: stop reporting ready, keep serving
// for a drain delay, then stop accepting and let in-flight requests finish.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Options configure Run.
type Options struct {
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	DrainDelay                             time.Duration // serving on after BeginShutdown
	ShutdownTimeout                        time.Duration // for in-flight requests
	// BeginShutdown is called first when ctx ends; it should make the
	// readiness probe fail.
	BeginShutdown func()
}

// Run serves h on ln until ctx is done, then shuts down gracefully. It returns
// nil after a clean shutdown and an error when serving fails or in-flight
// requests outlast the shutdown timeout.
func Run(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, o Options) error {
	srv := newServer(log, h, o)
	// Requests keep running during the drain: they must not inherit the
	// cancelled signal context.
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutdown started: not ready, draining", "drain_delay", o.DrainDelay.String())
	if o.BeginShutdown != nil {
		o.BeginShutdown()
	}
	select {
	case <-time.After(o.DrainDelay):
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}

	log.Info("closing listener, waiting for in-flight requests", "timeout", o.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", o.ShutdownTimeout, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("shutdown complete")
	return nil
}

// Background serves h on ln in a goroutine with o's timeouts, for a
// listener that needs no drain of its own (the metrics), and returns the
// function that stops it: it lets requests in flight finish within
// o.ShutdownTimeout and logs a failure, since the service is stopping anyway.
func Background(log *slog.Logger, ln net.Listener, h http.Handler, o Options) (stop func()) {
	srv := newServer(log, h, o)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "serves", "metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
			log.Warn("metrics listener: shutdown", "error", err.Error())
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped serving", "error", err.Error())
		}
	}
}

func newServer(log *slog.Logger, h http.Handler, o Options) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
