package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
)

// rollingEngine is a fakeEngine whose rolling updates complete at once.
type rollingEngine struct{ *fakeEngine }

func (f rollingEngine) ServiceUpdate(ctx context.Context, id string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	r, err := f.fakeEngine.ServiceUpdate(ctx, id, o)
	now := time.Now()
	for name, s := range f.services {
		if s.ID == id {
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &now}
			f.services[name] = s
		}
	}
	return r, err
}

// A rotation that preflight refuses, or a dry run, leaves the Swarm's
// secrets as they were: a version left behind would be picked up, silently,
// by the next deploy. One that goes through leaves the new version, used.
func TestRotateLeavesNoVersionUnlessItMoves(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "stack.yml")
	if err := os.WriteFile(file, []byte(`version: "3.9"
services:
  app:
    image: ${REGISTRY}/${IMAGE_NAME}:${IMAGE_TAG}
    secrets: [database_url]
secrets:
  database_url:
    external: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		smoke  *Smoke
		dryRun bool
		code   int      // the exit code
		want   []string // the secrets left of stack svc
	}{
		// The smoke check is refused after the build step, with the other
		// checks of the whole pipeline (nodes, smoke).
		{name: "refused after the build step", smoke: &Smoke{Service: "nope", Port: 8080, Path: "/", Timeout: time.Second},
			code: ExitRefused, want: []string{"svc_database_url_v1"}},
		{name: "dry run", dryRun: true, want: []string{"svc_database_url_v1"}},
		{name: "moves", want: []string{"svc_database_url_v1", "svc_database_url_v2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zero := uint64(0) // converges at once
			v1 := versionedSecret("s1", "svc", "database_url", 1)
			app := swarm.Service{ID: "app1", Spec: WithDefaults(swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: "svc_app", Labels: map[string]string{StackLabel: "svc"}},
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "registry.example/app:v1@" + digestV2,
					Secrets: []*swarm.SecretReference{{SecretName: v1.Spec.Name, SecretID: v1.ID, File: &swarm.SecretReferenceFileTarget{Name: "database_url"}}}}},
				Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
			})}
			api := rollingEngine{&fakeEngine{&fakeServices{fakeSwarm: newFakeSwarm(), services: map[string]swarm.Service{"svc_app": app}}}}
			api.secrets = []swarm.Secret{v1}
			var out bytes.Buffer
			d := &Deployer{
				Env: &Environment{Name: "staging", Stack: "svc", Image: "registry.example/app", Files: []string{file}, AppEnv: "staging",
					Deadline: time.Minute, History: 10, MaxReplicas: 4, Smoke: tt.smoke},
				API: api, Endpoint: "fake", Who: "ann@laptop", Out: &out, Poll: 10 * time.Millisecond,
				Auth:   func(context.Context, string) (string, error) { return "", nil },
				Lookup: func(string) (string, bool) { return "", false },
			}
			err := d.Rotate(t.Context(), "database_url", secret.New("postgres://new"), tt.dryRun)
			if code := exitCode(err); (err == nil) != (tt.code == 0) || (err != nil && code != tt.code) {
				t.Fatalf("rotate = %v (exit %d), want exit %d\n%s", err, code, tt.code, out.String())
			}
			var left []string
			for _, s := range api.secrets {
				left = append(left, s.Spec.Name)
			}
			slices.Sort(left)
			if !slices.Equal(left, tt.want) {
				t.Errorf("secrets after the rotation %v, want %v\n%s", left, tt.want, out.String())
			}
			if uses := api.services["svc_app"].Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName; uses != tt.want[len(tt.want)-1] {
				t.Errorf("the app uses %s, want %s", uses, tt.want[len(tt.want)-1])
			}
			if tt.code != 0 && !strings.Contains(out.String(), "removed svc_database_url_v2") {
				t.Errorf("the output does not say the version made was removed:\n%s", out.String())
			}
		})
	}
}
