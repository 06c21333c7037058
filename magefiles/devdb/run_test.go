package devdb

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/runner"
)

// fakeExec records the commands run and answers `config` with cfg.
type fakeExec struct {
	cfg   string
	ran   []string
	serve error
}

func (f *fakeExec) Run(_ context.Context, _ string, _ bool, c runner.Cmd) error {
	f.ran = append(f.ran, strings.Join(append([]string{c.Args[0]}, c.Env...), " "))
	if c.Args[0] == "serve" {
		return f.serve
	}
	return nil
}

func (f *fakeExec) Output(_ context.Context, _ string, c runner.Cmd) (string, error) {
	f.ran = append(f.ran, c.Args[0])
	return f.cfg, nil
}

const (
	fromEnv     = `{"database.url":{"value":"[REDACTED]","source":"environment"}}`
	unsetConfig = `{"database.url":{"value":"","source":"default"}}`
)

func TestRunOrder(t *testing.T) {
	refused := errors.New("dial unix /var/run/docker.sock: connect: no such file or directory")
	tests := []struct {
		name      string
		env       map[string]string
		cfg       string
		serve     error
		cancel    bool
		wantErr   string // "" for none
		wantBuilt bool
		wantRan   []string
	}{{
		name:      "a database in the environment needs no Docker",
		env:       map[string]string{"DATABASE_URL": "postgres://db/app"},
		cfg:       fromEnv,
		wantBuilt: true,
		wantRan:   []string{"config", "migrate", "serve"},
	}, {
		name:    "no database anywhere: Docker is checked before compiling",
		cfg:     unsetConfig,
		wantErr: "run needs a Docker engine",
	}, {
		name: "a variable the service ignores: Docker is asked after it says so",
		// DATABASE_URL_FILE pointing nowhere the service reads: the early
		// check believes it, the service's answer decides.
		env:       map[string]string{"DATABASE_URL_FILE": "/nowhere"},
		cfg:       unsetConfig,
		wantErr:   "run needs a Docker engine",
		wantBuilt: true,
		wantRan:   []string{"config"},
	}, {
		name:      "Ctrl-C stopping the service is not an error",
		env:       map[string]string{"DATABASE_URL": "postgres://db/app"},
		cfg:       fromEnv,
		serve:     context.Canceled,
		cancel:    true,
		wantBuilt: true,
		wantRan:   []string{"config", "migrate", "serve"},
	}, {
		name:      "a service that fails is",
		env:       map[string]string{"DATABASE_URL": "postgres://db/app"},
		cfg:       fromEnv,
		serve:     errors.New("the service stopped: exit status 1"),
		wantErr:   "exit status 1",
		wantBuilt: true,
		wantRan:   []string{"config", "migrate", "serve"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			ex := &fakeExec{cfg: tt.cfg, serve: tt.serve}
			built := false
			err := Run(ctx, Service{
				Getenv:   func(k string) string { return tt.env[k] },
				ReadFile: func(string) ([]byte, error) { return nil, fs.ErrNotExist },
				Checkout: t.TempDir(),
				Host:     "unix:///var/run/docker.sock",
				Connect:  func(context.Context) (EngineCloser, error) { return nil, refused },
				Build:    func(context.Context) (string, error) { built = true; return "bin/app", nil },
				Exec:     ex,
				Log:      io.Discard,
			})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run error = %v, want one containing %q", err, tt.wantErr)
			}
			if built != tt.wantBuilt {
				t.Errorf("built = %v, want %v", built, tt.wantBuilt)
			}
			if strings.Join(ex.ran, ",") != strings.Join(tt.wantRan, ",") {
				t.Errorf("ran %q, want %q", ex.ran, tt.wantRan)
			}
		})
	}
}
