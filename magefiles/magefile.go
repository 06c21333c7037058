//go:build mage

// The targets of this repository. Each one parses its arguments and calls a
// plain package under magefiles/; the logic and its tests live there.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/devdb"
	"github.com/fractionate/service-template/magefiles/lint"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Default runs when mage is called with no target.
var Default = Check

// Aliases: `mage test` runs the whole suite; test:unit and
// test:integration run one half.
var Aliases = map[string]any{
	"test": Test.All,
}

// exec is the runner the targets use: output streams through; with mage -v
// each command is echoed first (environment values never are).
func exec() runner.Runner {
	r := runner.Exec{}
	if mg.Verbose() {
		r.Echo = os.Stderr
	}
	return r
}

// Check runs lint and the unit tests: the quick gate before a commit.
func Check(ctx context.Context) {
	mg.SerialCtxDeps(ctx, Lint, Test.Unit)
}

// Lint checks formatting, go.mod tidiness, go vet and golangci-lint.
func Lint(ctx context.Context) error {
	if err := lint.Gofmt(ctx, "."); err != nil {
		return err
	}
	return runner.RunAll(ctx, exec(), lint.Checks())
}

// Run starts the service locally; without DATABASE_URL it starts a Postgres container for it.
func Run(ctx context.Context) error {
	var env []string
	if os.Getenv("DATABASE_URL") == "" && !dotEnvSets("DATABASE_URL") {
		cli, err := dockerEngine(ctx)
		if err != nil {
			return err
		}
		defer cli.Close()
		url, err := devdb.Ensure(ctx, cli, devContainerName(), os.Stderr)
		if err != nil {
			return err
		}
		env = append(env, "DATABASE_URL="+url)
	}
	bin, err := buildApp(ctx)
	if err != nil {
		return err
	}
	r := exec()
	if err := r.Run(ctx, runner.Command(bin, "migrate", "up").WithEnv(env...)); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "serving on http://localhost:8080 (HTTP_PORT to change); Ctrl-C stops")
	return r.Run(ctx, runner.Command(bin, "serve").WithEnv(env...))
}

// buildApp compiles the service for this machine into bin/app.
func buildApp(ctx context.Context) (string, error) {
	bin := filepath.Join("bin", "app")
	// -buildvcs=auto records the commit for /version when git can tell it.
	return "./" + bin, exec().Run(ctx, runner.Command("go", "build", "-buildvcs=auto", "-o", bin, "./app"))
}

// devContainerName names the local Postgres after the checkout, so two
// clones keep separate databases.
func devContainerName() string {
	wd, _ := os.Getwd()
	return strings.ToLower(filepath.Base(wd)) + "-dev-postgres"
}

// dotEnvSets reports whether ./.env assigns key; the service reads .env
// itself, so `run` must not start a database the .env already names.
func dotEnvSets(key string) bool {
	data, err := os.ReadFile(".env")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
		if strings.HasPrefix(line, key+"=") {
			return true
		}
	}
	return false
}
