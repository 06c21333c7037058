package lint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fractionate/service-template/magefiles/lint/appconfig"
	"github.com/fractionate/service-template/magefiles/lint/dockerfile"
	"github.com/fractionate/service-template/magefiles/lint/openapi"
	"github.com/fractionate/service-template/magefiles/lint/workflow"
	"github.com/fractionate/service-template/magefiles/runner"
	"github.com/fractionate/service-template/magefiles/stack"
)

// The files a deploy reads, relative to the repository root.
const (
	DockerfilePath = "Dockerfile"
	OpenAPIPath    = "app/internal/httpapi/openapi.yaml"
	ConfigDir      = "config"
	// ActionlintModfile pins actionlint apart from ToolsModfile (see the
	// comment in it).
	ActionlintModfile = "tools/actionlint/go.mod"
)

// WorkflowsDir holds the GitHub Actions workflows.
const WorkflowsDir = ".github/workflows"

// Actionlint checks the workflow files (paths relative to the repository
// root), printing one "file:line:col: message" per problem. They are named
// rather than found, because actionlint looks for them only in a git work
// tree. shellcheck and pyflakes are off: actionlint uses them only when
// they are installed, and the result must not depend on the machine.
func Actionlint(files ...string) runner.Cmd {
	args := []string{"tool", "-modfile=" + ActionlintModfile, "actionlint", "-oneline", "-no-color", "-shellcheck=", "-pyflakes="}
	return runner.Command("go", append(args, files...)...)
}

// workflows lists the workflow files under dir, relative to it.
func workflows(dir string) ([]string, error) {
	var files []string
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, WorkflowsDir, pattern))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			rel, err := filepath.Rel(dir, f)
			if err != nil {
				return nil, err
			}
			files = append(files, filepath.ToSlash(rel))
		}
	}
	return files, nil
}

// Files checks every file a deploy reads in the checkout at dir, and returns
// all the problems found, each naming the file and the line or key:
//
//   - the compose files, loaded as Compose loads them, the production one
//     held to the production rules (magefiles/stack);
//   - the Dockerfile, read by BuildKit's parser (lint/dockerfile);
//   - the OpenAPI document, validated by kin-openapi (lint/openapi);
//   - config/*.json, loaded by the service binary built from dir
//     (lint/appconfig);
//   - the workflows: every run step one mage call (lint/workflow), and
//     actionlint.
func Files(ctx context.Context, dir string) error {
	var errs []error
	if err := stack.Lint(ctx, dir); err != nil {
		errs = append(errs, err)
	}
	if err := dockerfile.CheckFile(filepath.Join(dir, DockerfilePath), DockerfilePath); err != nil {
		errs = append(errs, err)
	}
	if err := openapi.CheckFile(ctx, filepath.Join(dir, filepath.FromSlash(OpenAPIPath)), OpenAPIPath); err != nil {
		errs = append(errs, err)
	}
	if err := configFiles(ctx, dir); err != nil {
		errs = append(errs, err)
	}
	if err := checkWorkflows(ctx, dir); err != nil {
		errs = append(errs, fmt.Errorf("workflows:\n%w", err))
	}
	return errors.Join(errs...)
}

func checkWorkflows(ctx context.Context, dir string) error {
	files, err := workflows(dir)
	if err != nil || len(files) == 0 {
		return err
	}
	var errs []error
	for _, f := range files {
		errs = append(errs, workflow.CheckFile(filepath.Join(dir, filepath.FromSlash(f)), f))
	}
	if err := quiet(ctx, Actionlint(files...).InDir(dir)); err != nil {
		errs = append(errs, fmt.Errorf("actionlint: %w", err))
	}
	return errors.Join(errs...)
}

// configFiles builds the service from dir and asks it about each file.
func configFiles(ctx context.Context, dir string) error {
	tmp, err := os.MkdirTemp("", "lint-app-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "app")
	if err := quiet(ctx, runner.Command("go", "build", "-trimpath", "-o", bin, "./app").InDir(dir)); err != nil {
		return fmt.Errorf("%s: build the service to load them: %w", ConfigDir, err)
	}
	return appconfig.Check(ctx, bin, filepath.Join(dir, ConfigDir), ConfigDir)
}

// quiet runs c, keeping its output back unless it fails; then the output is
// part of the error.
func quiet(ctx context.Context, c runner.Cmd) error {
	var out bytes.Buffer
	if err := (runner.Exec{Quiet: true, Stderr: &out}).Run(ctx, c); err != nil {
		if s := strings.TrimSpace(out.String()); s != "" {
			return fmt.Errorf("%w\n%s", err, s)
		}
		return err
	}
	return nil
}
