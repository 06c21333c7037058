package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
)

// stackFile is a one-service stack file for pipeline tests.
const stackFile = `version: "3.9"
services:
  app:
    image: ${REGISTRY}/${IMAGE_NAME}:${IMAGE_TAG}
    secrets: [database_url]
secrets:
  database_url:
    external: true
`

// testSession is a Session on a fake Swarm holding stack svc with one app
// service at replicas (0 converges at once) using database_url v1.
func testSession(t *testing.T, replicas uint64) (*Session, *fakeswarm.Engine, *bytes.Buffer) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "stack.yml")
	if err := os.WriteFile(file, []byte(stackFile), 0o644); err != nil {
		t.Fatal(err)
	}
	api := fakeswarm.New()
	v1 := versionedSecret("s1", "svc", "database_url", 1)
	api.AddSecret(v1)
	api.AddService(withDefaults(swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "svc_app", Labels: map[string]string{StackLabel: "svc"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "registry.example/app:v1@" + digestV2,
			Secrets: []*swarm.SecretReference{{SecretName: v1.Spec.Name, SecretID: v1.ID, File: &swarm.SecretReferenceFileTarget{Name: "database_url"}}}}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}))
	var out bytes.Buffer
	env := &envfile.Environment{Name: "staging", Stack: "svc", Image: "registry.example/app", Files: []string{file}, AppEnv: "staging",
		Deadline: time.Minute, History: 10, MaxReplicas: 4}
	s := &Session{
		Env: env, Envs: envfile.Environments{"staging": env}, API: api, Who: "ann@laptop", Out: &out, Poll: time.Millisecond,
		Auth: noAuth, Lookup: func(string) (string, bool) { return "", false },
		Registry: fakeResolver{"registry.example/app:v1": digestV2, "registry.example/app:v3": digestV3},
	}
	return s, api, &out
}
