package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCmdStringHidesEnvValuesAndQuotes(t *testing.T) {
	tests := []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"plain", Command("go", "test", "./..."), "go test ./..."},
		{"quoted", Command("git", "tag", "-a", "v1.0.0", "-m", "Release v1.0.0"), "git tag -a v1.0.0 -m 'Release v1.0.0'"},
		{"single quote", Command("echo", "it's"), `echo 'it'\''s'`},
		{"empty arg", Command("x", ""), "x ''"},
		{"dollar is not expanded", Command("echo", "$HOME"), "echo '$HOME'"},
		{"env by name only", Command("app", "migrate", "up").WithEnv("DATABASE_URL=postgres://u:hunter2@h/db"), "DATABASE_URL=… app migrate up"},
		{"dir", Command("ls").InDir("/tmp"), "ls  (in /tmp)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if strings.Contains(tt.cmd.String(), "hunter2") {
				t.Errorf("String() shows a secret: %q", tt.cmd.String())
			}
		})
	}
}

func TestExecQuietShowsOutputOnlyOnFailure(t *testing.T) {
	var out bytes.Buffer
	e := Exec{Stdout: &out, Stderr: &out, Quiet: true}
	if err := e.Run(t.Context(), Command("sh", "-c", "echo fine")); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("quiet success printed %q", out.String())
	}
	err := e.Run(t.Context(), Command("sh", "-c", "echo broken; exit 3"))
	if err == nil || !strings.Contains(err.Error(), "sh -c 'echo broken; exit 3'") {
		t.Fatalf("error should name the command, got %v", err)
	}
	if !strings.Contains(out.String(), "broken") {
		t.Fatalf("failure output not shown: %q", out.String())
	}
}

func TestExecPassesStdin(t *testing.T) {
	var out bytes.Buffer
	e := Exec{Stdout: &out, Stdin: strings.NewReader("typed\n")}
	if err := e.Run(t.Context(), Command("sh", "-c", "read line; echo got $line")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "got typed\n" {
		t.Fatalf("output = %q", out.String())
	}
}

func TestExecPassesEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	got, err := Output(t.Context(), Command("sh", "-c", `printf '%s %s' "$GREETING" "$PWD"`).WithEnv("GREETING=hi").InDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got != "hi "+dir {
		t.Fatalf("Output = %q, want %q", got, "hi "+dir)
	}
}

func TestOutputIncludesStderrOnFailure(t *testing.T) {
	_, err := Output(t.Context(), Command("sh", "-c", "echo nope >&2; exit 1"))
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("want stderr in error, got %v", err)
	}
}

var errFailed = errors.New("failed")

func TestRunAllStopsAtFirstFailure(t *testing.T) {
	rec := &Recorder{FailOn: func(c Cmd) error {
		if c.Name == "b" {
			return errFailed
		}
		return nil
	}}
	err := RunAll(context.Background(), rec, []Cmd{Command("a"), Command("b"), Command("c")})
	if !errors.Is(err, errFailed) {
		t.Fatalf("err = %v, want errFailed", err)
	}
	if got := strings.Join(rec.Lines(), ","); got != "a,b" {
		t.Fatalf("ran %q, want a,b", got)
	}
}

func TestDryRunPrintsWithoutRunning(t *testing.T) {
	var out bytes.Buffer
	marker := t.TempDir() + "/touched"
	if err := (DryRun{Out: &out}).Run(t.Context(), Command("touch", marker)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "would run: touch "+marker) {
		t.Fatalf("dry run printed %q", out.String())
	}
	if _, err := Output(t.Context(), Command("test", "-e", marker)); err == nil {
		t.Fatal("dry run ran the command")
	}
}

// TestExecInterruptsOnCancel: a cancelled command gets SIGINT first, so it
// can shut down cleanly (the service drains, a migration finishes).
func TestExecInterruptsOnCancel(t *testing.T) {
	for _, tt := range []struct {
		exit        int
		wantStopped bool // a clean exit after the interrupt is no failure
	}{
		{0, true},
		{3, false},
	} {
		t.Run(fmt.Sprintf("exit %d", tt.exit), func(t *testing.T) {
			marker := t.TempDir() + "/interrupted"
			ctx, cancel := context.WithCancel(t.Context())
			ready := t.TempDir() + "/trap-set"
			done := make(chan error, 1)
			go func() {
				done <- Exec{Quiet: true}.Run(ctx, Command("sh", "-c",
					fmt.Sprintf(`trap 'touch %s; exit %d' INT; touch %s; while :; do sleep 0.05; done`, marker, tt.exit, ready)))
			}()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the command never started")
				}
			}
			cancel()
			select {
			case err := <-done:
				if got := Stopped(ctx, err); got != tt.wantStopped {
					t.Errorf("Stopped(%v) = %v, want %v", err, got, tt.wantStopped)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("command did not stop after cancellation")
			}
			if _, err := Output(t.Context(), Command("test", "-e", marker)); err != nil {
				t.Fatal("the command was not sent SIGINT")
			}
		})
	}
}
