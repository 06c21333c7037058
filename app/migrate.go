package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/fractionate/service-template/app/internal/config"
	"github.com/fractionate/service-template/app/internal/health"
	"github.com/fractionate/service-template/app/internal/migrate"
	"github.com/fractionate/service-template/app/internal/postgres"
	"github.com/fractionate/service-template/migrations"
)

// migrateWait is how long migrate waits for the database to answer.
const migrateWait = time.Minute

func migrateCmd(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError("migrate needs a subcommand: up, down [VERSION], to VERSION or status")
	}
	sub, args := args[0], args[1:]
	// "to" takes a version; "down" takes an optional one (down to it).
	var target int64 = -1
	switch {
	case sub != "up" && sub != "down" && sub != "to" && sub != "status":
		return usageError(fmt.Sprintf("migrate: unknown subcommand %q", sub))
	case sub == "to" && len(args) != 1:
		return usageError("migrate to takes exactly one VERSION")
	case (sub == "up" || sub == "status") && len(args) > 0, sub == "down" && len(args) > 1:
		return usageError(fmt.Sprintf("migrate %s: unexpected arguments %q", sub, args))
	case len(args) == 1:
		v, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || v < 0 {
			return usageError(fmt.Sprintf("migrate %s: version %q is not a non-negative integer", sub, args[0]))
		}
		target = v
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}

	pool, err := postgres.Open(ctx, cfg.Database.URL, 2, cfg.Database.QueryTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()
	// As a deploy's job, migrate may start a moment before it can reach
	// the database; it waits for it rather than failing the deploy.
	if err := postgres.Wait(ctx, pool, migrateWait, func(err error) {
		fmt.Fprintf(os.Stderr, "app: migrate: the database does not answer yet (%v); waiting up to %s\n", health.Cause(err), migrateWait)
	}); err != nil {
		return err
	}
	m, err := migrate.FromPool(pool, migrations.FS)
	if err != nil {
		return err
	}
	defer m.Close()

	var results []migrate.Result
	switch sub {
	case "up":
		results, err = m.Up(ctx)
	case "down":
		if target >= 0 {
			results, err = m.DownTo(ctx, target)
		} else {
			results, err = m.Down(ctx)
		}
	case "to":
		results, err = m.To(ctx, target)
	case "status":
		return printStatus(ctx, m, stdout)
	}
	for _, r := range results {
		fmt.Fprintf(stdout, "%-4s %s (%s)\n", r.Direction, r.Name, r.Duration)
	}
	if err != nil {
		return err
	}
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		fmt.Fprintf(stdout, "nothing to do; database at version %d\n", v)
		return nil
	}
	fmt.Fprintf(stdout, "database at version %d\n", v)
	return nil
}

func printStatus(ctx context.Context, m *migrate.Migrator, w io.Writer) error {
	ss, err := m.Status(ctx)
	if err != nil {
		return err
	}
	for _, s := range ss {
		state := "pending"
		if s.Applied {
			state = "applied"
		}
		fmt.Fprintf(w, "%-8s %s\n", state, s.Name)
	}
	return nil
}
