package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fractionate/service-template/app/internal/buildinfo"
	"github.com/fractionate/service-template/app/internal/config"
	"github.com/fractionate/service-template/app/internal/health"
	"github.com/fractionate/service-template/app/internal/httpapi"
	"github.com/fractionate/service-template/app/internal/metrics"
	"github.com/fractionate/service-template/app/internal/migrate"
	"github.com/fractionate/service-template/app/internal/notes"
	"github.com/fractionate/service-template/app/internal/postgres"
	"github.com/fractionate/service-template/app/internal/server"
	"github.com/fractionate/service-template/migrations"
)

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	build := buildinfo.Get()
	log.Info("starting", "env", cfg.Env, "version", build.Version, "commit", build.Commit,
		"redis", cfg.Redis.URL.IsSet(), "drain_delay", cfg.Shutdown.DrainDelay.String())

	pool, err := postgres.Open(ctx, cfg.Database.URL, cfg.Database.MaxConns, cfg.Database.QueryTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()
	checks := map[string]health.Check{"postgres": postgres.Ping(pool)}

	if cfg.Redis.URL.IsSet() {
		opts, err := redis.ParseURL(cfg.Redis.URL.Reveal())
		if err != nil {
			return fmt.Errorf("redis.url: the Redis client cannot parse it (value not shown: it is a secret)")
		}
		// Without this, go-redis ignores the readiness deadline on the socket.
		opts.ContextTimeoutEnabled = true
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		checks["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	ready := health.NewReadiness(cfg.Readiness.Timeout, checks)
	expected, err := migrate.Latest(migrations.FS)
	if err != nil {
		return err
	}

	var observer httpapi.Observer
	if addr := cfg.MetricsAddr(); addr != "" {
		m := metrics.New()
		if err := m.Register(metrics.NewPoolCollector(pool.Stat)); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s (metrics.port): %w", addr, err)
		}
		// Scrapes go on while the API drains; the listener closes last.
		defer server.Background(log, mln, m.Handler(), serverOptions(cfg))()
		observer = m
	}
	handler := newHandler(cfg, log, pool, ready, schemaVersions{expected: expected, pool: pool, timeout: cfg.Readiness.Timeout}, observer)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	opts := serverOptions(cfg)
	opts.BeginShutdown = ready.BeginShutdown
	return server.Run(ctx, log, ln, handler, opts)
}

// newHandler is the service's HTTP handler as serve runs it.
func newHandler(cfg *config.Config, log *slog.Logger, pool *pgxpool.Pool, ready httpapi.Readiness, schema httpapi.Schema, obs httpapi.Observer) http.Handler {
	return httpapi.New(httpapi.Deps{
		Log:          log,
		Notes:        notes.NewStore(pool, cfg.Database.QueryTimeout),
		Ready:        ready,
		Build:        buildinfo.Get(),
		Schema:       schema,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Observer:     obs,
	})
}

func serverOptions(cfg *config.Config) server.Options {
	return server.Options{
		ReadTimeout:     cfg.HTTP.ReadTimeout,
		WriteTimeout:    cfg.HTTP.WriteTimeout,
		IdleTimeout:     cfg.HTTP.IdleTimeout,
		DrainDelay:      cfg.Shutdown.DrainDelay,
		ShutdownTimeout: cfg.Shutdown.Timeout,
	}
}

// schemaVersions is what /version reports of the schema: the highest
// migration this binary embeds, and the version the database is at, read
// under the readiness timeout.
type schemaVersions struct {
	expected int64
	pool     *pgxpool.Pool
	timeout  time.Duration
}

func (s schemaVersions) Expected() int64 { return s.expected }

func (s schemaVersions) Current(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return migrate.DatabaseVersion(ctx, s.pool)
}
