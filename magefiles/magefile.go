//go:build mage

// The targets of this repository. Each one parses its arguments and calls a
// plain package under magefiles/; the logic and its tests live there.
package main

import (
	"context"
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
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	return devdb.Run(ctx, devdb.Service{
		Getenv:   os.Getenv,
		ReadFile: os.ReadFile,
		Checkout: wd,
		Image:    os.Getenv("POSTGRES_IMAGE"),
		Host:     dockerHost(),
		Connect:  func(ctx context.Context) (devdb.EngineCloser, error) { return dockerEngine(ctx) },
		Build:    buildApp,
		Exec:     devdb.BriefExec{},
		Log:      os.Stderr,
	})
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
