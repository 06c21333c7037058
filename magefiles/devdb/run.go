package devdb

import (
	"context"
	"fmt"
	"io"

	"github.com/fractionate/service-template/magefiles/runner"
)

// Service is what `mage run` needs from its surroundings; the target fills
// it in, and tests fill it with fakes.
type Service struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	Checkout string // the checkout's directory: names the container
	Image    string // the Postgres image, DefaultImage when empty
	// Host is the engine Connect dials, for the error when it does not answer.
	Host    string
	Connect func(context.Context) (EngineCloser, error)
	// Build compiles the service and returns the binary's path.
	Build func(context.Context) (string, error)
	// Exec runs the binary's subcommands: config (its output is read),
	// migrate up, then serve (streamed until ctx ends).
	Exec Exec
	Log  io.Writer
}

// EngineCloser is an Engine the caller closes.
type EngineCloser interface {
	Engine
	Close() error
}

// Exec runs one command; Output returns what it printed.
type Exec interface {
	Run(ctx context.Context, what string, stream bool, c runner.Cmd) error
	Output(ctx context.Context, what string, c runner.Cmd) (string, error)
}

// Run starts the service locally: build, ask the service whether a database
// is configured in any of its layers, start the Postgres container when
// none is, migrate, serve until ctx ends. A Ctrl-C that stops a cleanly
// shut-down service is not an error.
func Run(ctx context.Context, s Service) error {
	// With no database configured anywhere run can see, it will need Docker
	// for its Postgres: find out before compiling, not after.
	var engine EngineCloser
	connect := func() error {
		if engine != nil {
			return nil
		}
		e, err := s.Connect(ctx)
		if err != nil {
			return NoEngine(s.Host, err)
		}
		engine = e
		return nil
	}
	defer func() {
		if engine != nil {
			_ = engine.Close()
		}
	}()
	if ConfiguredOutside(s.Getenv, s.ReadFile) == "" {
		if err := connect(); err != nil {
			return err
		}
	}
	bin, err := s.Build(ctx)
	if err != nil {
		return err
	}
	// The service's own answer decides, from all its layers (.env,
	// environment, secrets).
	cfg, err := s.Exec.Output(ctx, "read the service's configuration", runner.Command(bin, "config"))
	if err != nil {
		return err
	}
	configured, err := Configured([]byte(cfg))
	if err != nil {
		return err
	}
	var env []string
	if !configured {
		if err := connect(); err != nil {
			return err
		}
		image := s.Image
		if image == "" {
			image = DefaultImage
		}
		fmt.Fprintln(s.Log, "run: no database configured, so a Postgres container serves (set DATABASE_URL to use a database of your own)")
		url, err := Ensure(ctx, engine, ContainerName(s.Checkout), image, s.Log)
		if err != nil {
			return err
		}
		env = append(env, "DATABASE_URL="+url)
	}
	if err := s.Exec.Run(ctx, "apply the migrations", false, runner.Command(bin, "migrate", "up").WithEnv(env...)); err != nil {
		return err
	}
	fmt.Fprintln(s.Log, "starting the service (its address is in the 'listening' log line); Ctrl-C stops it")
	err = s.Exec.Run(ctx, "the service stopped", true, runner.Command(bin, "serve").WithEnv(env...))
	if runner.Stopped(ctx, err) {
		return nil
	}
	return err
}

// BriefExec runs commands with runner.Brief: output through, one-line errors.
type BriefExec struct{}

func (BriefExec) Run(ctx context.Context, what string, stream bool, c runner.Cmd) error {
	return runner.Brief{What: what, Stream: stream}.Run(ctx, c)
}

func (BriefExec) Output(ctx context.Context, what string, c runner.Cmd) (string, error) {
	return runner.Brief{What: what}.Output(ctx, c)
}
