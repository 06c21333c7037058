package deploy

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/signature"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeResolver knows digests by repository:tag.
type fakeResolver map[string]string

func (f fakeResolver) Digest(_ context.Context, ref string) (string, error) {
	img := ParseImage(ref)
	if img.Digest != "" {
		return img.Digest, nil
	}
	if d, ok := f[img.Repository+":"+img.Tag]; ok {
		return d, nil
	}
	return "", errNotInRegistry
}

func (f fakeResolver) Version(context.Context, string) (string, error) { return "", nil }

// Verify: an image is signed when the resolver knows "signed@<digest>".
func (f fakeResolver) Verify(_ context.Context, ref, _ string) (signature.Report, error) {
	d := ParseImage(ref).Digest
	if _, ok := f["signed@"+d]; ok {
		return signature.Report{Key: "fakekey"}, nil
	}
	return signature.Report{}, fmt.Errorf("verify: %w for %s", signature.ErrUnsigned, d)
}

const (
	digestV2 = "sha256:861334b9d4d9be6ba99518ae8b32a68632aa2fd2640ae3cb7ebfd32c456f5a87"
	digestV3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	digestPG = "sha256:6e5657e69b968326b994d448a5734e7e9a7cc167ab9c0575d4f6960326c7ad2f"
)

// liveFixture is a stack as the engine reported it (testdata/plan/live.json,
// captured from a real deploy), with extra services when given.
func liveFixture(t *testing.T, extra ...swarm.Service) *Live {
	t.Helper()
	data, err := os.ReadFile("testdata/plan/live.json")
	if err != nil {
		t.Fatal(err)
	}
	var services []swarm.Service
	if err := json.Unmarshal(data, &services); err != nil {
		t.Fatal(err)
	}
	l := &Live{Services: map[string]swarm.Service{}, NetworkNames: map[string]string{"netinternal0000000000000": "svc_internal", "nettraefikpublic00000000": "traefik-public"},
		Networks: map[string]bool{"svc_internal": true, "traefik-public": true}, Secrets: map[string]swarm.Secret{}, Configs: map[string]bool{}}
	for _, s := range append(services, extra...) {
		l.Services[strings.TrimPrefix(s.Spec.Name, "svc_")] = s
	}
	return l
}

// desiredFixture loads the repository's production stack file with the
// test override and extra files, as environment "staging" deploying tag.
func desiredFixture(t *testing.T, tag, digest string, extra ...string) *Desired {
	t.Helper()
	files := append([]string{"../../docker-compose.prod.yml", "testdata/plan/override.yml"}, extra...)
	env := &envfile.Environment{Name: "staging", Stack: "svc", Image: "registry.example/e2e-app", Files: files, AppEnv: "staging",
		Variables: map[string]string{"APP_HOST": "svc.example.com", "ROUTER": "svc", "POSTGRES_IMAGE": "registry.example/postgres:e2e"}}
	st, err := loadStack(env, Release{Repository: env.Image, Tag: tag, Digest: digest}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	api := fakeswarm.New()
	api.AddSecret(versionedSecret("ykshg8xfwin31f4etc5z5btmz", "svc", "database_url", 1))
	api.AddSecret(versionedSecret("gheraihwb64zf8w5dq6tubj52", "svc", "postgres_password", 1))
	var cs Checks
	if !st.bindSecrets(versionsOf("svc", api.Secrets()), &Live{}, &cs) {
		t.Fatal(cs.Err())
	}
	desired, err := st.Convert(t.Context(), api)
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{Registry: fakeResolver{"registry.example/postgres:e2e": digestPG}}
	if err := s.pin(t.Context(), desired); err != nil {
		t.Fatal(err)
	}
	return desired
}

// versionedSecret is version n of a logical secret as secrets:set makes it.
func versionedSecret(id, stack, logical string, n int) swarm.Secret {
	return swarm.Secret{ID: id, Spec: swarm.SecretSpec{Annotations: swarm.Annotations{
		Name:   secretName(stack, logical, n),
		Labels: map[string]string{ledger.LabelStack: stack, labelSecret: logical, labelSecretVersion: strconv.Itoa(n)},
	}}}
}

// Plans against a stack captured from a real Swarm, compared with golden
// files (go test -run TestPlan -update rewrites them).
func TestPlan(t *testing.T) {
	old := liveFixture(t).Services["postgres"]
	old.ID, old.Spec.Name = "oldid", "svc_old"

	tests := []struct {
		name    string
		live    *Live
		desired func(t *testing.T) *Desired
		release Release
	}{
		{
			name:    "same release changes nothing",
			live:    liveFixture(t),
			desired: func(t *testing.T) *Desired { return desiredFixture(t, "v2.0.0", digestV2) },
		},
		{
			name:    "first deploy creates everything",
			live:    &Live{Services: map[string]swarm.Service{}, NetworkNames: map[string]string{}, Networks: map[string]bool{}},
			desired: func(t *testing.T) *Desired { return desiredFixture(t, "v2.0.0", digestV2) },
		},
		{
			name:    "next release",
			live:    liveFixture(t, old),
			desired: func(t *testing.T) *Desired { return desiredFixture(t, "v3.0.0", digestV3, "testdata/plan/next.yml") },
		},
		{
			name: "scale",
			live: liveFixture(t),
			desired: func(t *testing.T) *Desired {
				l := liveFixture(t)
				d := &Desired{Stack: "svc", Services: map[string]swarm.ServiceSpec{}}
				for name := range maps.Keys(l.Services) {
					d.Services[name] = l.Spec(name)
				}
				app := d.Services["app"]
				four := uint64(4)
				app.Mode.Replicated = &swarm.ReplicatedService{Replicas: &four}
				d.Services["app"] = app
				return d
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired := tt.desired(t)
			rel := Release{Repository: "registry.example/e2e-app", Tag: "v2.0.0", Digest: digestV2}
			if strings.HasPrefix(tt.name, "next") {
				rel.Tag, rel.Digest = "v3.0.0", digestV3
			}
			p := makePlan("staging", rel, desired, tt.live)
			var b strings.Builder
			p.Print(&b)
			golden(t, filepath.Join("testdata", "plan", strings.ReplaceAll(tt.name, " ", "-")+".golden"), b.String())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestEnvDiffNeverShowsValues(t *testing.T) {
	got := envDiff([]string{"A=1", "B=secret-old", "C=3"}, []string{"A=1", "B=secret-new", "D=4"})
	if got != "~B +D -C" {
		t.Errorf("envDiff = %q", got)
	}
	if strings.Contains(got, "secret") {
		t.Error("a value leaked into the plan")
	}
	if snake("UpdateConfig.FailureAction") != "update_config.failure_action" {
		t.Error(snake("UpdateConfig.FailureAction"))
	}
}
