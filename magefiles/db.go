//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/deploy"
	"github.com/fractionate/service-template/magefiles/migration"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Db manages the database schema. The targets run the service binary's own
// `migrate` command, so they read the same configuration as the service
// (DATABASE_URL from the environment, .env or Docker secrets). With
// -env=<name>, db:status and db:migrate run it as a job on that
// environment's stack instead, never opening its database's port.
type Db mg.Namespace

// Applies every pending migration: of the local database, or of an environment's, by a job on its stack under the deploy lock.
func (Db) Migrate(ctx context.Context,
	env *string, // an environment of deploy/environments.yml: migrate its database instead
) error {
	if e := str(env); e != "" {
		return withSession(ctx, e, func(ctx context.Context, s *deploy.Session) error { return s.DBMigrate(ctx) })
	}
	return appMigrate(ctx, "up")
}

// Reverts the most recent migration of the local database.
func (Db) Rollback(ctx context.Context) error { return appMigrate(ctx, "down") }

// Reverts the local database's migrations down to <version> (0 reverts them all); it never applies one.
func (Db) RollbackTo(ctx context.Context, version int) error {
	if version < 0 {
		return fmt.Errorf("db:rollbackTo: version %d is negative", version)
	}
	return appMigrate(ctx, "down", strconv.Itoa(version))
}

// Lists every migration as applied or pending: of the local database, or of an environment's, by a job on its stack.
func (Db) Status(ctx context.Context,
	env *string, // an environment of deploy/environments.yml: ask its database instead
) error {
	if e := str(env); e != "" {
		return withSession(ctx, e, func(ctx context.Context, s *deploy.Session) error { return s.DBStatus(ctx, os.Stdout) })
	}
	return appMigrate(ctx, "status")
}

// Creates the next numbered migration file: go tool mage db:new add_users_email.
func (Db) New(name string) error {
	path, err := migration.Create("migrations", name)
	if err != nil {
		return err
	}
	fmt.Println("created", path, "- write its Up and Down sections")
	return nil
}

func appMigrate(ctx context.Context, args ...string) error {
	bin, err := buildApp(ctx)
	if err != nil {
		return err
	}
	return exec().Run(ctx, runner.Command(bin, append([]string{"migrate"}, args...)...))
}
