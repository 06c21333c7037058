package deploy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/internal/probe"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

func TestSchemaRow(t *testing.T) {
	body := func(s string) probe.Result {
		return probe.Result{URL: "http://tasks.app:8080/version", Address: "10.0.1.5:8080", Status: 200, Body: json.RawMessage(s)}
	}
	tests := []struct {
		name string
		r    probe.Result
		want string
	}{
		{"in step", body(`{"version":"v3.0.0","schema":{"expected":3,"database":3}}`), "10.0.1.5:8080\tv3.0.0\t3\t3\tin step"},
		{"behind", body(`{"version":"v3.0.0","schema":{"expected":3,"database":2}}`), "\t3\t2\tbehind: migrations this release needs are not applied"},
		{"ahead after a rollback", body(`{"version":"v2.0.0","schema":{"expected":2,"database":3}}`), "\t2\t3\tahead: the database has migrations this release does not know"},
		{"database unreadable", body(`{"version":"v3.0.0","schema":{"expected":3,"database":null,"error":"timeout"}}`), "\t3\t?\tthe database cannot be read: timeout"},
		{"an old release", body(`{"version":"v0.9.0"}`), "v0.9.0\t-\t-\ta release that does not report its schema"},
		{"a failed request", probe.Result{URL: "http://tasks.app:8080/version", Address: "10.0.1.5:8080", Error: "connection refused"}, "10.0.1.5:8080\t-\t-\t-\tconnection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := schemaRow(tt.r); !strings.Contains(got, tt.want) {
				t.Errorf("schemaRow = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppPort(t *testing.T) {
	spec := func(env ...string) swarm.ServiceSpec {
		return swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Env: env}}}
	}
	env := &envfile.Environment{Smoke: &envfile.Smoke{Service: "web", Port: 9000}}
	if p := appPort(env, "web", spec("HTTP_PORT=1")); p != 9000 {
		t.Errorf("the smoke service's port: %d", p)
	}
	if p := appPort(env, "app", spec("APP_ENV=staging", "HTTP_PORT=8181")); p != 8181 {
		t.Errorf("HTTP_PORT: %d", p)
	}
	if p := appPort(&envfile.Environment{}, "app", spec()); p != 8080 {
		t.Errorf("default: %d", p)
	}
}
