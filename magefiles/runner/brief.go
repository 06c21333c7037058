package runner

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Brief runs tools whose failure should read as one clear line: what was
// being done, then what the tool said, without its usage text and without
// a second line saying only "exit status 1". Standard output streams
// through. Standard error is kept back and written out after the command
// (all of it on success; on failure what came before the tool's final
// message), unless Stream is set: then it streams too (a server's logs)
// and the error repeats the last message.
type Brief struct {
	What           string    // what the command does, for the error: "apply the migrations"
	Stdout, Stderr io.Writer // default os.Stdout, os.Stderr
	Stream         bool
}

// Run runs c.
func (b Brief) Run(ctx context.Context, c Cmd) error {
	return b.run(ctx, c, orDefault(b.Stdout, os.Stdout))
}

// Output runs c and returns its standard output, trimmed.
func (b Brief) Output(ctx context.Context, c Cmd) (string, error) {
	var out bytes.Buffer
	err := b.run(ctx, c, &out)
	return strings.TrimSpace(out.String()), err
}

func (b Brief) run(ctx context.Context, c Cmd, stdout io.Writer) error {
	stderr := orDefault(b.Stderr, os.Stderr)
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = gracePeriod
	kept := &tail{max: 64 << 10}
	cmd.Stdout = stdout
	if b.Stream {
		cmd.Stderr = io.MultiWriter(stderr, kept)
	} else {
		cmd.Stderr = kept
	}
	err := cmd.Run()
	said := kept.String()
	if err == nil {
		if !b.Stream {
			_, _ = io.WriteString(stderr, said)
		}
		return nil
	}
	earlier, msg := Said(c.Name, said)
	if !b.Stream {
		_, _ = io.WriteString(stderr, earlier)
	}
	if msg == "" {
		msg = err.Error()
	}
	return &briefError{msg: b.What + ": " + msg, err: err}
}

// briefError reads as one line and unwraps to the command's error, so
// that Stopped still tells a Ctrl-C apart.
type briefError struct {
	msg string
	err error
}

func (e *briefError) Error() string { return e.msg }
func (e *briefError) Unwrap() error { return e.err }

// Said splits what a command wrote to standard error into what came
// before its final message and that message on one line. The message
// starts at the last line the command prefixed with its own name
// ("app: ...", as Go commands report errors), else it is the last line;
// usage text is left out, and the message's lines are joined.
func Said(name, stderr string) (earlier, message string) {
	prog := filepath.Base(name) + ": "
	var lines []string
	inUsage := false
	for line := range strings.SplitSeq(strings.TrimRight(stderr, "\n"), "\n") {
		switch {
		case isUsage(line):
			inUsage = true
			continue
		case inUsage && (line == "" || line[0] == ' ' || line[0] == '\t'):
			continue // the usage text goes on
		}
		inUsage = false
		lines = append(lines, line)
	}
	start := -1
	for i, line := range lines {
		if strings.HasPrefix(line, prog) {
			start = i
		}
	}
	if start < 0 {
		for start = len(lines) - 1; start > 0 && strings.TrimSpace(lines[start]) == ""; start-- {
		}
	}
	if start < 0 || len(lines) == 0 {
		return "", ""
	}
	var msg strings.Builder
	for i, line := range lines[start:] {
		line = strings.TrimSpace(line)
		if i == 0 {
			line = strings.TrimPrefix(line, strings.TrimSpace(prog))
			line = strings.TrimSpace(line)
		}
		if line == "" {
			continue
		}
		if msg.Len() > 0 {
			if strings.HasSuffix(msg.String(), ":") {
				msg.WriteString(" ")
			} else {
				msg.WriteString("; ")
			}
		}
		msg.WriteString(line)
	}
	if start > 0 {
		earlier = strings.Join(lines[:start], "\n") + "\n"
	}
	return earlier, msg.String()
}

// isUsage reports the first line of usage text: "usage: ..." or the flag
// package's "Usage of NAME:".
func isUsage(line string) bool {
	l := strings.ToLower(strings.TrimSpace(line))
	return strings.HasPrefix(l, "usage:") || strings.HasPrefix(l, "usage of ")
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
