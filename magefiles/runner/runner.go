// Package runner executes commands that the tooling has planned as data.
//
// Plans are lists of Cmd values: tests compare them without running anything,
// a dry run prints them, and Exec runs them. Unlike mage's sh package, nothing
// here expands "$", and printing a Cmd never shows environment values, which
// is where secrets travel.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Cmd is one command to run.
type Cmd struct {
	Name string
	Args []string
	Dir  string   // working directory; empty means the current one
	Env  []string // KEY=VALUE pairs added to the inherited environment
}

// Command builds a Cmd from argv.
func Command(name string, args ...string) Cmd { return Cmd{Name: name, Args: args} }

// InDir returns a copy of c that runs in dir.
func (c Cmd) InDir(dir string) Cmd { c.Dir = dir; return c }

// WithEnv returns a copy of c with extra KEY=VALUE pairs.
func (c Cmd) WithEnv(kv ...string) Cmd {
	c.Env = append(append([]string(nil), c.Env...), kv...)
	return c
}

// String renders the command for people: argv shell-quoted, environment
// variables by name only, since their values may be secret.
func (c Cmd) String() string {
	var b strings.Builder
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		b.WriteString(k + "=… ")
	}
	b.WriteString(quote(c.Name))
	for _, a := range c.Args {
		b.WriteString(" " + quote(a))
	}
	if c.Dir != "" {
		b.WriteString("  (in " + c.Dir + ")")
	}
	return b.String()
}

func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// gracePeriod is how long a cancelled command may take to exit on its own
// before it is killed. Mage exits 5 s after Ctrl-C, so stay under that; a
// command started from a terminal also gets the terminal's SIGINT itself.
const gracePeriod = 4 * time.Second

// Runner runs commands.
type Runner interface {
	Run(ctx context.Context, c Cmd) error
}

// Exec runs commands for real. With Quiet set, a command's output is kept
// back and shown only when it fails, which keeps CI logs short.
type Exec struct {
	Stdout, Stderr io.Writer // default os.Stdout, os.Stderr
	Stdin          io.Reader // default none; os.Stdin for an interactive command
	Quiet          bool
	Echo           io.Writer // when set, each command is printed here first
}

// Verbose is the runner mage targets use: output streams through; with
// echo (mage -v) each command is printed first, environment values never.
func Verbose(echo bool) Exec {
	if echo {
		return Exec{Echo: os.Stderr}
	}
	return Exec{}
}

// Run runs c and returns an error naming the command when it fails.
func (e Exec) Run(ctx context.Context, c Cmd) error {
	stdout, stderr := orDefault(e.Stdout, os.Stdout), orDefault(e.Stderr, os.Stderr)
	if e.Echo != nil {
		fmt.Fprintln(e.Echo, "+", c)
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Stdin = e.Stdin
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	// On cancellation (Ctrl-C in mage) ask the command to stop, as a
	// terminal would; kill it if it has not stopped within gracePeriod.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = gracePeriod
	var captured bytes.Buffer
	if e.Quiet {
		cmd.Stdout, cmd.Stderr = &captured, &captured
	} else {
		cmd.Stdout, cmd.Stderr = stdout, stderr
	}
	if err := cmd.Run(); err != nil {
		if e.Quiet {
			_, _ = stderr.Write(captured.Bytes())
		}
		return fmt.Errorf("%s: %w", c, err)
	}
	return nil
}

// Stopped reports whether err, from Run, says only that ctx was cancelled
// and the command then exited cleanly: a Ctrl-C the command handled. A
// command that failed on its way out is not Stopped.
func Stopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// Output runs c and returns its standard output, trimmed; standard error is
// included in the error when the command fails.
func Output(ctx context.Context, c Cmd) (string, error) {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("%s: %w: %s", c, err, msg)
		}
		return "", fmt.Errorf("%s: %w", c, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func orDefault(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}

// DryRun prints each command instead of running it.
type DryRun struct{ Out io.Writer }

// Run prints c.
func (d DryRun) Run(_ context.Context, c Cmd) error {
	_, err := fmt.Fprintln(orDefault(d.Out, os.Stdout), "would run:", c)
	return err
}

// Recorder remembers the commands it is given, for tests. FailOn, when set,
// decides which commands fail.
type Recorder struct {
	mu     sync.Mutex
	Cmds   []Cmd
	FailOn func(Cmd) error
}

// Run records c.
func (r *Recorder) Run(_ context.Context, c Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Cmds = append(r.Cmds, c)
	if r.FailOn != nil {
		return r.FailOn(c)
	}
	return nil
}

// Lines returns the recorded commands as strings.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.Cmds))
	for i, c := range r.Cmds {
		out[i] = c.String()
	}
	return out
}

// RunAll runs cmds in order and stops at the first failure.
func RunAll(ctx context.Context, r Runner, cmds []Cmd) error {
	for _, c := range cmds {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.Run(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
