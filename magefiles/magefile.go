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

// Run starts the service locally; unless a database is configured, it starts a Postgres container for it.
func Run(ctx context.Context) error {
	bin, err := buildApp(ctx)
	if err != nil {
		return err
	}
	// Ask the service itself whether a database is configured, from any of
	// its layers (.env, environment, secrets).
	cfgJSON, err := runner.Output(ctx, runner.Command(bin, "config"))
	if err != nil {
		return err
	}
	configured, err := devdb.Configured([]byte(cfgJSON))
	if err != nil {
		return err
	}
	var env []string
	if !configured {
		cli, err := dockerEngine(ctx)
		if err != nil {
			return err
		}
		defer cli.Close()
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		url, err := devdb.Ensure(ctx, cli, devdb.ContainerName(wd), envOr("POSTGRES_IMAGE", devdb.DefaultImage), os.Stderr)
		if err != nil {
			return err
		}
		env = append(env, "DATABASE_URL="+url)
	}
	r := exec()
	if err := r.Run(ctx, runner.Command(bin, "migrate", "up").WithEnv(env...)); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the service (its address is in the 'listening' log line); Ctrl-C stops it")
	err = r.Run(ctx, runner.Command(bin, "serve").WithEnv(env...))
	if runner.Stopped(ctx, err) {
		return nil // Ctrl-C, and the service shut down cleanly
	}
	return err
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
