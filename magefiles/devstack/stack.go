// Package devstack runs the local stack of docker-compose.yml for
// development: the service built from the checkout, a one-off migration,
// Postgres and Redis. It drives Docker Compose v2 (`docker compose`), so the
// stack a developer gets from mage is the one `docker compose up` gives by
// hand; only the build differs: the binary is compiled on the host with Go's
// build cache and packaged by the Dockerfile's prebuilt target, which makes a
// rebuild take seconds instead of a full compile inside the golang image.
//
// Every step is planned as a command (runner.Cmd) first; tests compare the
// plans without Docker.
package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

// File is the compose file of the local stack, relative to the checkout.
const File = "docker-compose.yml"

// The stack's services, and the one that serves HTTP on AppPort.
const (
	App      = "app"
	Migrate  = "migrate"
	Postgres = "postgres"
	AppPort  = "8080"
)

// Stack is the local stack of one checkout.
type Stack struct {
	Dir     string   // the checkout: compose file and build context
	Project string   // compose project name; empty: the file's `name:`
	Env     []string // KEY=VALUE for compose: ports, images (HTTP_PORT, POSTGRES_IMAGE, ...)
	GOARCH  string   // the engine's architecture, which the host build targets
	Stamp   dockerimage.Stamp
	// GoCache is GOCACHE for the host build; empty keeps the host's.
	GoCache string
	// Run runs the commands whose output the developer sees (compose's
	// progress, psql, logs); Out gets the stack's own lines.
	Run runner.Runner
	Out io.Writer
}

// Compose is the docker compose command for the stack, with args.
func (s Stack) Compose(args ...string) runner.Cmd {
	argv := []string{"compose", "-f", File}
	if s.Project != "" {
		argv = append(argv, "-p", s.Project)
	}
	// The prebuilt target packages the binary Build compiles.
	env := append([]string{"APP_BUILD_TARGET=" + dockerimage.TargetPrebuilt}, s.Env...)
	return runner.Command("docker", append(argv, args...)...).InDir(s.Dir).WithEnv(env...)
}

// Build is the host build of the binary the image packages.
func (s Stack) Build() (runner.Cmd, error) {
	return dockerimage.GoBuild{Dir: s.Dir, GOARCH: s.GOARCH, Stamp: s.Stamp, GoCache: s.GoCache}.Cmd()
}

// UpCmd builds the images and starts every service, returning when each is
// healthy (the one-off migrate service: when it has exited 0).
func (s Stack) UpCmd() runner.Cmd { return s.Compose("up", "--detach", "--build", "--wait") }

// ReloadCmd rebuilds and recreates only the app, leaving Postgres and Redis
// running; with migrations, the migrate service too, which runs before the
// new app starts.
func (s Stack) ReloadCmd(migrations bool) runner.Cmd {
	args := []string{"up", "--detach", "--build", "--wait", "--no-deps"}
	if migrations {
		args = append(args, Migrate)
	}
	return s.Compose(append(args, App)...)
}

// DownCmd stops and removes the stack's containers and network; with
// volumes, also its data volume and the images it built and still tags.
func (s Stack) DownCmd(volumes bool) runner.Cmd {
	args := []string{"down", "--remove-orphans"}
	if volumes {
		args = append(args, "--volumes", "--rmi", "local")
	}
	return s.Compose(args...)
}

// PruneCmd removes the images of the compose project that no tag names any
// more: every rebuild leaves the previous app image behind untagged. Compose
// labels what it builds with its project, so nothing else is touched.
func PruneCmd(project string) runner.Cmd {
	return runner.Command("docker", "image", "prune", "--force", "--filter", "label=com.docker.compose.project="+project)
}

// Down stops the stack (DownCmd); with volumes nothing of it is left: data,
// network, and every image it built, the replaced ones too.
func (s Stack) Down(ctx context.Context, volumes bool) error {
	if err := s.Run.Run(ctx, s.DownCmd(volumes)); err != nil {
		return err
	}
	if !volumes {
		return nil
	}
	return s.prune(ctx)
}

func (s Stack) prune(ctx context.Context) error {
	project, err := s.ProjectName(ctx)
	if err != nil {
		return err
	}
	return runner.Exec{Quiet: true, Stderr: s.out()}.Run(ctx, PruneCmd(project))
}

// ProjectName is the compose project's name: Project, or what compose
// makes of COMPOSE_PROJECT_NAME and the file's name:.
func (s Stack) ProjectName(ctx context.Context) (string, error) {
	if s.Project != "" {
		return s.Project, nil
	}
	out, err := runner.Output(ctx, s.Compose("config", "--format", "json"))
	if err != nil {
		return "", err
	}
	var c struct{ Name string }
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		return "", fmt.Errorf("docker compose config: %w", err)
	}
	if c.Name == "" {
		return "", errors.New("docker compose config gave no project name")
	}
	return c.Name, nil
}

// LogsCmd shows the last lines of service's logs (all services when empty)
// and, with follow, keeps following them.
func (s Stack) LogsCmd(service string, follow bool) runner.Cmd {
	args := []string{"logs", "--tail", "100"}
	if follow {
		args = append(args, "--follow")
	}
	if service != "" {
		args = append(args, service)
	}
	return s.Compose(args...)
}

// PsqlCmd opens psql in the Postgres container, or runs one command in it.
func (s Stack) PsqlCmd(command string) runner.Cmd {
	args := []string{"exec", Postgres, "psql", "-U", "app", "-d", "app"}
	if command != "" {
		args = []string{"exec", "-T", Postgres, "psql", "-U", "app", "-d", "app", "-v", "ON_ERROR_STOP=1", "-c", command}
	}
	return s.Compose(args...)
}

// MigrateCmd rebuilds the migrate service's image from the binary Build
// made and runs it once (starting Postgres if it is not running).
func (s Stack) MigrateCmd() runner.Cmd {
	return s.Compose("run", "--rm", "--build", Migrate)
}

// Up builds the binary, then the images, starts the stack and waits until
// it is healthy; it returns the app's URL. When a service does not come up,
// the last lines of its logs go to Out and the error names it.
func (s Stack) Up(ctx context.Context) (string, error) {
	if err := s.build(ctx); err != nil {
		return "", err
	}
	if err := s.Run.Run(ctx, s.UpCmd()); err != nil {
		return "", s.explain(ctx, err)
	}
	return s.URL(ctx)
}

// Reload rebuilds the binary and recreates the app from it, after applying
// the migrations when they changed; Postgres and Redis keep running.
func (s Stack) Reload(ctx context.Context, migrations bool) error {
	if err := s.build(ctx); err != nil {
		return err
	}
	if err := s.Run.Run(ctx, s.ReloadCmd(migrations)); err != nil {
		return s.explain(ctx, err)
	}
	// The image the app ran before is untagged now: drop it, or a day of
	// saves leaves a pile of them.
	if err := s.prune(ctx); err != nil {
		fmt.Fprintf(s.out(), "watch: remove the replaced image: %v\n", err)
	}
	return nil
}

// Migrate applies pending migrations with the checkout's code.
func (s Stack) Migrate(ctx context.Context) error {
	if err := s.build(ctx); err != nil {
		return err
	}
	return s.Run.Run(ctx, s.MigrateCmd())
}

func (s Stack) build(ctx context.Context) error {
	cmd, err := s.Build()
	if err != nil {
		return err
	}
	if err := s.Run.Run(ctx, cmd); err != nil {
		return fmt.Errorf("build the service: %w", err)
	}
	return nil
}

// URL is where the app answers, from the port compose published.
func (s Stack) URL(ctx context.Context) (string, error) {
	out, err := runner.Output(ctx, s.Compose("port", App, AppPort))
	if err != nil {
		return "", err
	}
	return appURL(out)
}

// appURL turns `docker compose port` output (127.0.0.1:8080, or 0.0.0.0:8080
// for a port published on every interface) into an http URL on loopback.
func appURL(hostPort string) (string, error) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(hostPort))
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("the app's port is not published (docker compose port said %q)", hostPort)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// explain adds to a failed `up` which services did not come up, and writes
// the last lines of their logs to Out.
func (s Stack) explain(ctx context.Context, err error) error {
	ps, psErr := runner.Output(ctx, s.Compose("ps", "--all", "--format", "json"))
	if psErr != nil {
		return errors.Join(err, fmt.Errorf("list the stack's containers: %w", psErr))
	}
	containers, psErr := ParsePS([]byte(ps))
	if psErr != nil {
		return errors.Join(err, psErr)
	}
	failing := Failing(containers)
	if len(failing) == 0 {
		return err
	}
	var names []string
	for _, c := range failing {
		names = append(names, c.Service+" ("+c.Describe()+")")
		var logs bytes.Buffer
		_ = runner.Exec{Stdout: &logs, Stderr: &logs}.Run(ctx, s.Compose("logs", "--no-color", "--tail", "30", c.Service))
		fmt.Fprintf(s.out(), "\n--- last log lines of %s (%s) ---\n%s", c.Service, c.Describe(), logs.String())
	}
	return fmt.Errorf("not up: %s (its last log lines are above): %w", strings.Join(names, ", "), err)
}

func (s Stack) out() io.Writer {
	if s.Out == nil {
		return io.Discard
	}
	return s.Out
}

// Hint is what Up prints: where the app is and what to try.
func Hint(url string) string {
	return fmt.Sprintf(`The stack is up: %[1]s
  curl %[1]s/ready
  curl -X POST %[1]s/v1/notes -H 'Content-Type: application/json' -d '{"title":"hello","body":"first note"}'
  curl %[1]s/v1/notes
Next: go tool mage dev:watch (rebuild on change) · dev:logs · dev:psql · dev:down
`, url)
}
