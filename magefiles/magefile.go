//go:build mage

// The targets of this repository. Each one parses its arguments and calls a
// plain package under magefiles/; the logic and its tests live there.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/cmdline"
	"github.com/fractionate/service-template/magefiles/deploy"
	"github.com/fractionate/service-template/magefiles/devdb"
	"github.com/fractionate/service-template/magefiles/lint"
	"github.com/fractionate/service-template/magefiles/runner"
	"github.com/fractionate/service-template/magefiles/testtargets"
)

// Default runs when mage is called with no target.
var Default = Check

// init refuses a bad command line before any target runs: mage itself
// would run the targets before a stray word, then complain about it.
func init() {
	cmdline.Guard(os.Args[1:], os.Getenv, targetTable, targetAliases, os.Stderr, os.Exit)
}

// exec is the runner the targets use: output streams through; with mage -v
// each command is echoed first (environment values never are).
func exec() runner.Runner { return runner.Verbose(mg.Verbose()) }

// Runs lint and the unit tests: the quick gate before a commit.
func Check(ctx context.Context) {
	mg.SerialCtxDeps(ctx, Lint, testtargets.Unit)
}

// Checks formatting, go.mod tidiness, go vet, golangci-lint, and every file a deploy reads (compose files, Dockerfile, OpenAPI, config, workflows, deploy environments).
func Lint(ctx context.Context) error {
	if err := lint.Gofmt(ctx, "."); err != nil {
		return err
	}
	if err := lint.Files(ctx, "."); err != nil {
		return err
	}
	if err := deploy.Lint(ctx, "."); err != nil {
		return err
	}
	return runner.RunAll(ctx, exec(), lint.Checks())
}

// Run starts the service locally; unless a database is configured (DATABASE_URL, .env or a secret), it starts a Postgres container for it.
func Run(ctx context.Context) error {
	// Without a database configured anywhere run can see, it will need
	// Docker for its Postgres: find out before compiling, not after.
	var cli *client.Client
	if where := devdb.ConfiguredOutside(os.Getenv, os.ReadFile); where == "" {
		c, err := dockerEngine(ctx)
		if err != nil {
			return devdb.NoEngine(dockerHost(), err)
		}
		defer c.Close()
		cli = c
	}
	bin, err := buildApp(ctx)
	if err != nil {
		return err
	}
	// Ask the service itself whether a database is configured, from any of
	// its layers (.env, environment, secrets): its answer decides.
	cfgJSON, err := runner.Brief{What: "read the service's configuration"}.Output(ctx, runner.Command(bin, "config"))
	if err != nil {
		return err
	}
	configured, err := devdb.Configured([]byte(cfgJSON))
	if err != nil {
		return err
	}
	var env []string
	if !configured {
		if cli == nil {
			c, err := dockerEngine(ctx)
			if err != nil {
				return devdb.NoEngine(dockerHost(), err)
			}
			defer c.Close()
			cli = c
		}
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "run: no database configured, so a Postgres container serves (set DATABASE_URL to use a database of your own)")
		url, err := devdb.Ensure(ctx, cli, devdb.ContainerName(wd), envOr("POSTGRES_IMAGE", devdb.DefaultImage), os.Stderr)
		if err != nil {
			return err
		}
		env = append(env, "DATABASE_URL="+url)
	}
	if err := (runner.Brief{What: "apply the migrations"}).Run(ctx, runner.Command(bin, "migrate", "up").WithEnv(env...)); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the service (its address is in the 'listening' log line); Ctrl-C stops it")
	err = runner.Brief{What: "the service stopped", Stream: true}.Run(ctx, runner.Command(bin, "serve").WithEnv(env...))
	if runner.Stopped(ctx, err) {
		return nil // Ctrl-C, and the service shut down cleanly
	}
	return err
}

// dockerHost is the engine the Docker client dials.
func dockerHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

// buildApp compiles the service for this machine into bin/app.
func buildApp(ctx context.Context) (string, error) {
	bin := filepath.Join("bin", "app")
	// -buildvcs=auto records the commit for /version when git can tell it.
	return "./" + bin, exec().Run(ctx, runner.Command("go", "build", "-buildvcs=auto", "-o", bin, "./app"))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
