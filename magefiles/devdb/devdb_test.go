package devdb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
)

func TestSpecPublishesOnLoopbackOnly(t *testing.T) {
	s := Spec("x-dev-postgres", "postgres:16-alpine")
	bindings := s.HostConfig.PortBindings[pgPort]
	if len(bindings) != 1 || !bindings[0].HostIP.IsLoopback() || bindings[0].HostPort != "" {
		t.Fatalf("bindings = %+v, want one loopback binding on an engine-chosen port", bindings)
	}
	if s.Config.Image != "postgres:16-alpine" || len(s.HostConfig.Mounts) != 1 || s.HostConfig.Mounts[0].Source != "x-dev-postgres" {
		t.Fatalf("spec = %+v", s)
	}
}

func TestContainerName(t *testing.T) {
	tests := []struct{ dir, want string }{
		{"/home/me/src/billing-service", "billing-service-dev-postgres"},
		{"/home/me/src/Billing Service/", "billing-service-dev-postgres"},
		{"/work/main", "main-dev-postgres"},
		{"/", "service-dev-postgres"},
	}
	for _, tt := range tests {
		if got := ContainerName(tt.dir); got != tt.want {
			t.Errorf("ContainerName(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

func TestConfigured(t *testing.T) {
	tests := []struct {
		name, json string
		want       bool
		wantErr    bool
	}{
		{"unset", `{"database.url":{"value":"","source":"default"}}`, false, false},
		{"from .env", `{"database.url":{"value":"[REDACTED]","source":".env"}}`, true, false},
		{"from a secret file", `{"database.url":{"value":"[REDACTED]","source":"secret /run/secrets/database_url"}}`, true, false},
		{"missing key", `{"http.port":{"value":"8080","source":"default"}}`, false, true},
		{"not json", `app: configuration: bad`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Configured([]byte(tt.json))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Configured = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestIntegrationEnsure creates the container, then finds and reuses it,
// then starts it again once stopped; each time the URL connects.
func TestIntegrationEnsure(t *testing.T) {
	dockertest.Require(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("devdb-test-%d", os.Getpid())
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		_, _ = cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		cli.Close()
	})
	image := os.Getenv("POSTGRES_IMAGE")
	if image == "" {
		image = DefaultImage
	}
	steps := []struct {
		name    string
		before  func()
		wantLog string
	}{
		{"create", func() {}, "creating container"},
		{"reuse", func() {}, "postgres ready"},
		{"restart", func() {
			if _, err := cli.ContainerStop(t.Context(), name, client.ContainerStopOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "starting container"},
	}
	for _, step := range steps {
		step.before()
		var log bytes.Buffer
		url, err := Ensure(t.Context(), cli, name, image, &log)
		if err != nil {
			t.Fatalf("%s: %v\n%s", step.name, err, log.String())
		}
		if !strings.Contains(log.String(), step.wantLog) {
			t.Errorf("%s: log lacks %q:\n%s", step.name, step.wantLog, log.String())
		}
		if step.name == "reuse" && strings.Contains(log.String(), "creating") {
			t.Errorf("reuse created the container again:\n%s", log.String())
		}
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		_ = conn.Close(t.Context())
	}
}
