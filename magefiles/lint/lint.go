// Package lint plans the checks behind `mage lint`.
package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/fractionate/service-template/magefiles/runner"
)

// ToolsModfile pins the lint tools apart from the service's dependencies.
const ToolsModfile = "tools/go.mod"

// Checks returns the commands that must all succeed. gofmt is separate
// (see Gofmt) because it reports through its output, not its exit code.
func Checks() []runner.Cmd {
	return []runner.Cmd{
		// go.mod and go.sum must already be what `go mod tidy` makes them.
		runner.Command("go", "mod", "tidy", "-diff"),
		runner.Command("go", "vet", "./..."),
		// The targets are behind the mage build tag; vet them too.
		runner.Command("go", "vet", "-tags", "mage", "./magefiles"),
		runner.Command("go", "tool", "-modfile="+ToolsModfile, "golangci-lint", "run", "./..."),
	}
}

// Gofmt fails when gofmt would change a file, naming the files.
func Gofmt(ctx context.Context, dir string) error {
	out, err := runner.Output(ctx, runner.Command("gofmt", "-l", ".").InDir(dir))
	if err != nil {
		return err
	}
	if out != "" {
		files := strings.Fields(out)
		return fmt.Errorf("gofmt: %d file(s) need formatting (run gofmt -w): %s", len(files), strings.Join(files, " "))
	}
	return nil
}
