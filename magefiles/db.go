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

// Migrate applies every pending migration (-env=<name>: of that environment's database, by a job on its stack, under the deploy lock).
func (Db) Migrate(ctx context.Context, env *string) error {
	if e := str(env); e != "" {
		return withDeployer(ctx, e, func(ctx context.Context, d *deploy.Deployer) error { return d.DBMigrate(ctx) })
	}
	return appMigrate(ctx, "up")
}

// Rollback reverts the most recent migration.
func (Db) Rollback(ctx context.Context) error { return appMigrate(ctx, "down") }

// RollbackTo reverts migrations down to <version> (0 reverts them all); it never applies one.
func (Db) RollbackTo(ctx context.Context, version int) error {
	if version < 0 {
		return fmt.Errorf("db:rollbackTo: version %d is negative", version)
	}
	return appMigrate(ctx, "down", strconv.Itoa(version))
}

// Status lists every migration as applied or pending (-env=<name>: of that environment's database, by a job on its stack).
func (Db) Status(ctx context.Context, env *string) error {
	if e := str(env); e != "" {
		return withDeployer(ctx, e, func(ctx context.Context, d *deploy.Deployer) error { return d.DBStatus(ctx, os.Stdout) })
	}
	return appMigrate(ctx, "status")
}

// New creates the next numbered migration file: mage db:new add_users_email.
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
