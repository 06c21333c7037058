package devdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"
)

func TestConfiguredOutside(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  string // "" when nothing configures a database
	}{
		{name: "nothing", want: ""},
		{name: "environment", env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "the environment's DATABASE_URL"},
		{name: "environment, file form", env: map[string]string{"DATABASE_URL_FILE": "/secrets/db"}, want: "the environment's DATABASE_URL_FILE"},
		{name: ".env", files: map[string]string{".env": "LOG_LEVEL=debug\nDATABASE_URL=postgres://x\n"}, want: "DATABASE_URL in .env"},
		{name: ".env without it", files: map[string]string{".env": "LOG_LEVEL=debug\nDATABASE_URL=\n"}, want: ""},
		{name: "DOTENV_FILE", env: map[string]string{"DOTENV_FILE": "local.env"}, files: map[string]string{".env": "DATABASE_URL=x", "local.env": "X=1"}, want: ""},
		{name: ".env that does not parse", files: map[string]string{".env": "DATABASE_URL='unterminated\n"}, want: ".env (it does not parse: the service will say more)"},
		{name: "secret file", files: map[string]string{"/run/secrets/database_url": "postgres://x"}, want: "/run/secrets/database_url"},
		{name: "SECRETS_DIR", env: map[string]string{"SECRETS_DIR": "/s"}, files: map[string]string{"/run/secrets/database_url": "x", "/s/database_url": "x"}, want: "/s/database_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			readFile := func(name string) ([]byte, error) {
				if c, ok := tt.files[name]; ok {
					return []byte(c), nil
				}
				return nil, fs.ErrNotExist
			}
			if got := ConfiguredOutside(getenv, readFile); got != tt.want {
				t.Errorf("ConfiguredOutside = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoEngineIsOneLineWithTheWaysOn(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: "/nowhere.sock", Net: "unix"}, Err: &os.SyscallError{Syscall: "connect", Err: fs.ErrNotExist}}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "socket missing", err: fmt.Errorf("the Docker engine at unix:///nowhere.sock does not answer: failed to connect to the docker API: %w", dial), want: "(dial unix /nowhere.sock: connect: file does not exist)"},
		{name: "no answer in time", err: fmt.Errorf("does not answer: %w", fmt.Errorf("ping: %w", context.DeadlineExceeded)), want: "(context deadline exceeded)"},
		{name: "plain", err: errors.New("boom"), want: "(boom)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := NoEngine("unix:///nowhere.sock", tt.err).Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) || !strings.Contains(msg, "set DATABASE_URL") || !strings.Contains(msg, "at unix:///nowhere.sock") {
				t.Errorf("NoEngine = %q, want one line with %q, the host and DATABASE_URL", msg, tt.want)
			}
		})
	}
}
