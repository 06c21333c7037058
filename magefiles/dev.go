//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/devstack"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Dev runs the local stack of docker-compose.yml (the service, Postgres and
// Redis in containers) with Docker Compose v2. `run` is the lighter way: the
// service as a process, a Postgres container beside it.
type Dev mg.Namespace

// Up builds the service, starts the stack (migrations first) and waits until every service is healthy; prints the URL.
func (Dev) Up(ctx context.Context) error {
	_, err := devUp(ctx)
	return err
}

// Down stops the stack and keeps its data; -volumes also removes the database volume and the images it built.
func (Dev) Down(ctx context.Context, volumes *bool) error {
	s, err := devStack(ctx)
	if err != nil {
		return err
	}
	return s.Down(ctx, volumes != nil && *volumes)
}

// Logs shows the stack's logs and follows them until Ctrl-C (-service=app for one service).
func (Dev) Logs(ctx context.Context, service *string) error {
	s, err := devStack(ctx)
	if err != nil {
		return err
	}
	name := ""
	if service != nil {
		name = *service
	}
	err = s.Run.Run(ctx, s.LogsCmd(name, true))
	if runner.Stopped(ctx, err) {
		return nil
	}
	return err
}

// Psql opens psql on the stack's database (-command="SELECT ..." runs one command instead).
func (Dev) Psql(ctx context.Context, command *string) error {
	s, err := devStack(ctx)
	if err != nil {
		return err
	}
	c := ""
	if command != nil {
		c = *command
	}
	s.Run = runner.Exec{Stdin: os.Stdin}
	return s.Run.Run(ctx, s.PsqlCmd(c))
}

// Migrate applies pending migrations to the stack's database with the checkout's code.
func (Dev) Migrate(ctx context.Context) error {
	s, err := devStack(ctx)
	if err != nil {
		return err
	}
	return s.Migrate(ctx)
}

// Watch brings the stack up, then rebuilds and restarts the app whenever its code, migrations or config change (Postgres and Redis keep running); Ctrl-C stops watching.
func (Dev) Watch(ctx context.Context) error {
	s, err := devUp(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "watching the service's sources, migrations and config; Ctrl-C stops watching (the stack keeps running: dev:down stops it)")
	return s.Watch(ctx, devstack.WatchOptions{})
}

// devUp brings the stack up and says where it is.
func devUp(ctx context.Context) (devstack.Stack, error) {
	s, err := devStack(ctx)
	if err != nil {
		return s, err
	}
	url, err := s.Up(ctx)
	if err != nil {
		return s, err
	}
	fmt.Print(devstack.Hint(url))
	return s, nil
}

// devStack is the stack of this checkout. Compose reads the published ports
// and images from the environment (HTTP_PORT, POSTGRES_IMAGE, ...) and
// COMPOSE_PROJECT_NAME, as by hand.
func devStack(ctx context.Context) (devstack.Stack, error) {
	if err := devstack.CheckCompose(ctx); err != nil {
		return devstack.Stack{}, err
	}
	cli, err := dockerEngine(ctx)
	if err != nil {
		return devstack.Stack{}, err
	}
	defer cli.Close()
	_, goarch, err := dockerimage.EngineTarget(ctx, cli)
	if err != nil {
		return devstack.Stack{}, err
	}
	// The commit, when git can tell it, for /version; a dev build says so.
	commit, _ := runner.Output(ctx, runner.Command("git", "rev-parse", "--short", "HEAD"))
	return devstack.Stack{
		Dir:    ".",
		GOARCH: goarch,
		Stamp:  dockerimage.Stamp{Version: "dev", Commit: commit},
		Run:    exec(),
		Out:    os.Stderr,
	}, nil
}
