package runner

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestSaid(t *testing.T) {
	tests := []struct {
		name, stderr     string
		earlier, message string
	}{
		{name: "nothing", stderr: "", earlier: "", message: ""},
		{
			name:    "a Go command's error",
			stderr:  "app: migrate up: failed to connect: dial tcp 127.0.0.1:1: connect: connection refused\n",
			message: "migrate up: failed to connect: dial tcp 127.0.0.1:1: connect: connection refused",
		},
		{
			name:    "usage text goes",
			stderr:  "app: unknown command \"confg\"\nusage: app [serve | migrate up|down [VERSION] | config]\n",
			message: `unknown command "confg"`,
		},
		{
			name:    "indented usage goes too",
			stderr:  "app: bad flag\nUsage of app:\n  -v\tverbose\n",
			message: "bad flag",
		},
		{
			name:    "lines joined",
			stderr:  "app: configuration:\ndatabase.url (from env DATABASE_URL): must be a URL\nlog.level: unknown\n",
			message: "configuration: database.url (from env DATABASE_URL): must be a URL; log.level: unknown",
		},
		{
			name:    "logs before the message are kept apart",
			stderr:  `{"level":"INFO","msg":"migrating"}` + "\napp: migrate up: boom\n",
			earlier: `{"level":"INFO","msg":"migrating"}` + "\n",
			message: "migrate up: boom",
		},
		{
			name:    "no prefix: the last line",
			stderr:  "first\nsecond\n\n",
			earlier: "first\n",
			message: "second",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			earlier, msg := Said("./bin/app", tt.stderr)
			if earlier != tt.earlier || msg != tt.message {
				t.Errorf("Said = %q, %q\nwant    %q, %q", earlier, msg, tt.earlier, tt.message)
			}
		})
	}
}

func sh(script string) Cmd { return Command("sh", "-c", script) }

func TestBriefFailureIsOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	b := Brief{What: "apply the migrations", Stdout: &stdout, Stderr: &stderr}
	err := b.Run(context.Background(), sh(`echo applied; echo 'log line' >&2; echo 'sh: migrate up: boom' >&2; echo 'usage: sh migrate' >&2; exit 3`))
	if err == nil || err.Error() != "apply the migrations: migrate up: boom" {
		t.Fatalf("err = %v", err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("the command's exit status is lost: %v", err)
	}
	if stdout.String() != "applied\n" || stderr.String() != "log line\n" {
		t.Errorf("stdout %q, stderr %q; want the output and the log line only", stdout.String(), stderr.String())
	}
}

func TestBriefSuccessKeepsStderr(t *testing.T) {
	var stderr bytes.Buffer
	out, err := Brief{What: "read", Stderr: &stderr}.Output(context.Background(), sh(`echo '{"a":1}'; echo warning >&2`))
	if err != nil || out != `{"a":1}` || stderr.String() != "warning\n" {
		t.Errorf("Output = %q, %v; stderr %q", out, err, stderr.String())
	}
}

func TestBriefStreamRepeatsTheLastMessage(t *testing.T) {
	var stderr bytes.Buffer
	err := Brief{What: "the service stopped", Stderr: &stderr, Stream: true}.Run(context.Background(), sh(`echo 'request served' >&2; echo 'sh: listen tcp :8080: bind: address already in use' >&2; exit 1`))
	if err == nil || err.Error() != "the service stopped: listen tcp :8080: bind: address already in use" {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(stderr.String(), "request served\n") {
		t.Errorf("streamed stderr = %q", stderr.String())
	}
}

func TestBriefSilentFailure(t *testing.T) {
	err := Brief{What: "run it", Stderr: &bytes.Buffer{}}.Run(context.Background(), sh(`exit 4`))
	if err == nil || err.Error() != "run it: exit status 4" {
		t.Errorf("err = %v", err)
	}
}
