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

// TestIntegrationEnsure creates the container, then finds and reuses it, and
// both times returns a URL that connects.
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
	var log bytes.Buffer
	for i, wantLog := range []string{"creating container", "postgres ready"} {
		url, err := Ensure(t.Context(), cli, name, &log)
		if err != nil {
			t.Fatalf("Ensure #%d: %v\n%s", i+1, err, log.String())
		}
		if !strings.Contains(log.String(), wantLog) {
			t.Errorf("log after Ensure #%d lacks %q:\n%s", i+1, wantLog, log.String())
		}
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(t.Context())
	}
	if n := strings.Count(log.String(), "creating container"); n != 1 {
		t.Errorf("created the container %d times, want once:\n%s", n, log.String())
	}
}
