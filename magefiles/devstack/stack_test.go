package devstack

import (
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
)

func TestPlans(t *testing.T) {
	s := Stack{Dir: "/src", Project: "p1", Env: []string{"HTTP_PORT=18080"}, GOARCH: "arm64", Stamp: dockerimage.Stamp{Version: "dev", Commit: "abc1234"}}
	build, err := s.Build()
	if err != nil {
		t.Fatal(err)
	}
	const compose = "APP_BUILD_TARGET=… HTTP_PORT=… docker compose -f docker-compose.yml -p p1 "
	tests := []struct {
		name string
		cmd  runner.Cmd
		want string
	}{
		{"build", build, "CGO_ENABLED=… GOOS=… GOARCH=… go build -trimpath -buildvcs=false -ldflags '-s -w -X github.com/fractionate/service-template/app/internal/buildinfo.Version=dev -X github.com/fractionate/service-template/app/internal/buildinfo.Commit=abc1234 -X github.com/fractionate/service-template/app/internal/buildinfo.Date=' -o bin/image/app ./app  (in /src)"},
		{"up", s.UpCmd(), compose + "up --detach --build --wait  (in /src)"},
		{"reload", s.ReloadCmd(false), compose + "up --detach --build --wait --no-deps app  (in /src)"},
		{"reload with migrations", s.ReloadCmd(true), compose + "up --detach --build --wait --no-deps migrate app  (in /src)"},
		{"down", s.DownCmd(false), compose + "down --remove-orphans  (in /src)"},
		{"down -volumes", s.DownCmd(true), compose + "down --remove-orphans --volumes --rmi local  (in /src)"},
		{"logs", s.LogsCmd("", true), compose + "logs --tail 100 --follow  (in /src)"},
		{"logs of one service", s.LogsCmd("app", false), compose + "logs --tail 100 app  (in /src)"},
		{"psql", s.PsqlCmd(""), compose + "exec postgres psql -U app -d app  (in /src)"},
		{"psql -command", s.PsqlCmd("SELECT 1"), compose + "exec -T postgres psql -U app -d app -v ON_ERROR_STOP=1 -c 'SELECT 1'  (in /src)"},
		{"migrate", s.MigrateCmd(), compose + "run --rm --build migrate  (in /src)"},
		{"prune", PruneCmd("p1"), "docker image prune --force --filter label=com.docker.compose.project=p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	// The build target is the prebuilt one, whatever the caller's Env says.
	if env := s.UpCmd().Env; env[0] != "APP_BUILD_TARGET=prebuilt" {
		t.Errorf("Env = %v", env)
	}
	// Without a project, compose's own rules name it (-p, COMPOSE_PROJECT_NAME, name:).
	if got := (Stack{Dir: "."}).Compose("ps").String(); strings.Contains(got, " -p ") {
		t.Errorf("Compose without a project = %s", got)
	}
}

func TestAppURL(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"127.0.0.1:8080\n", "http://127.0.0.1:8080", ""},
		{"0.0.0.0:32768", "http://127.0.0.1:32768", ""},
		{"[::1]:8080", "http://[::1]:8080", ""},
		{"[::]:8080", "http://127.0.0.1:8080", ""},
		{":0", "", "not published"},
		{"", "", "not published"},
	}
	for _, tt := range tests {
		got, err := appURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("appURL(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("appURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	tests := []struct {
		have string
		want bool
	}{
		{"2.40.3", true},
		{"v2.40.3", true},
		{"2.21.0", true},
		{"2.21.0-desktop.1", true},
		{"2.20.9", false},
		{"1.29.2", false},
		{"5.0.0", true},
		{"dev", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := atLeast(tt.have, MinCompose); got != tt.want {
			t.Errorf("atLeast(%q, %s) = %v, want %v", tt.have, MinCompose, got, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	h := Hint("http://127.0.0.1:18080")
	for _, want := range []string{"http://127.0.0.1:18080\n", "curl http://127.0.0.1:18080/ready", "curl -X POST http://127.0.0.1:18080/v1/notes"} {
		if !strings.Contains(h, want) {
			t.Errorf("Hint does not contain %q:\n%s", want, h)
		}
	}
}
