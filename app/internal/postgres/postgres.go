// Package postgres opens the connection pool from the configuration and
// tells a database that cannot answer from other errors.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fractionate/service-template/internal/secret"
)

// Open returns a pool for url. It does not connect: the service starts (and
// reports not ready) while the database is down.
//
// connectTimeout bounds each connection attempt unless the URL sets
// connect_timeout. Without a bound, an attempt against a server that
// accepts and never answers goes on after the request that caused it gave up
// (the pool finishes connections in the background) and holds a pool slot
// for good: enough of them and nothing is served even once the database
// recovers.
func Open(ctx context.Context, url secret.Value, maxConns int, connectTimeout time.Duration) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url.Reveal())
	if err != nil {
		// The driver's message quotes the URL; keep it out of logs.
		return nil, errors.New("database.url: the Postgres driver cannot parse it (value not shown: it is a secret)")
	}
	pc.MaxConns = int32(min(maxConns, 1000)) //nolint:gosec // bounded by config validation
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = connectTimeout
	}
	return pgxpool.NewWithConfig(ctx, pc)
}

// Ping is the readiness check: one round trip, under ctx's deadline.
func Ping(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error {
		var one int
		return pool.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
}

// Unavailable reports whether err means the database could not answer
// (down, refusing, unreachable, too slow, restarting, out of connections)
// rather than that it answered with an error about the query.
func Unavailable(err error) bool {
	var connect *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err),
		errors.As(err, &connect), errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pgErr):
		// 08: connection exception; 53300: too many connections; 57P01-03:
		// the server is shutting down or starting.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "53300" ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	return false
}

// Wait waits until the database answers, for up to within: a one-off
// command (app migrate, in a Swarm job) may start before the database
// listens, or before the overlay network carries its packets (a container
// new on a node is reachable once the Swarm's gossip has spread its
// address, seconds later). Errors that are not about reaching the
// database end the wait at once. said, when set, is told of the first
// failure.
func Wait(ctx context.Context, pool *pgxpool.Pool, within time.Duration, said func(error)) error {
	deadline := time.Now().Add(within)
	for first := true; ; first = false {
		err := Ping(pool)(ctx)
		if err == nil || !Unavailable(err) || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the database did not answer within %s: %w", within, err)
		}
		if first && said != nil {
			said(err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
