// Package postgres opens the connection pool from the configuration.
package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fractionate/service-template/internal/secret"
)

// Open returns a pool for url. It does not connect: the service starts (and
// reports not ready) while the database is down.
func Open(ctx context.Context, url secret.Value, maxConns int) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url.Reveal())
	if err != nil {
		// The driver's message quotes the URL; keep it out of logs.
		return nil, errors.New("database.url: the Postgres driver cannot parse it (value not shown: it is a secret)")
	}
	pc.MaxConns = int32(min(maxConns, 1000)) //nolint:gosec // bounded by config validation
	return pgxpool.NewWithConfig(ctx, pc)
}

// Ping is the readiness check: one round trip, under ctx's deadline.
func Ping(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error {
		var one int
		return pool.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
}
