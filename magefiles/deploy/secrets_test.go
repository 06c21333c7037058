package deploy

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
)

func TestLogicalOf(t *testing.T) {
	tests := []struct {
		name, secret string
		logical      string
		n            int
		ok           bool
	}{
		{"a version", "svc_database_url_v3", "database_url", 3, true},
		{"two digits", "svc_database_url_v12", "database_url", 12, true},
		{"from before versioning", "svc_database_url", "database_url", 0, true},
		{"another stack's", "other_database_url_v1", "", 0, false},
		{"a stack whose name starts like this one", "svc2_database_url_v1", "", 0, false},
		{"v0 is no version", "svc_key_v0", "key_v0", 0, true},
		{"the prefix alone", "svc_", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logical, n, ok := logicalOf("svc", tt.secret)
			if logical != tt.logical || n != tt.n || ok != tt.ok {
				t.Errorf("LogicalOf(svc, %q) = %q, %d, %v; want %q, %d, %v", tt.secret, logical, n, ok, tt.logical, tt.n, tt.ok)
			}
		})
	}
}

// SetSecret counts versions per stack and logical name, labels each, and
// never puts the value in an error.
func TestSetSecret(t *testing.T) {
	api := fakeswarm.New()
	api.AddSecret(versionedSecret("x1", "other", "database_url", 7)) // another stack's
	api.AddSecret(swarm.Secret{ID: "x2", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "svc_database_url"}}})
	for want := 1; want <= 3; want++ {
		v, err := SetSecret(t.Context(), api, "svc", "database_url", secret.New("value"))
		if err != nil {
			t.Fatal(err)
		}
		if v.N != want || v.Name != secretName("svc", "database_url", want) {
			t.Fatalf("version %+v, want v%d", v, want)
		}
	}
	got := versionsOf("svc", api.Secrets())["database_url"]
	if len(got) != 3 || got[0].N != 3 || got[2].N != 1 {
		t.Errorf("versions %+v, want v3 v2 v1", got)
	}
	if v, _ := SetSecret(t.Context(), api, "svc", "api_key", secret.New("k")); v.N != 1 {
		t.Errorf("another logical secret starts at %d, want 1", v.N)
	}

	const canary = "canary-value-9f8e"
	for _, c := range []struct {
		name, logical, value, want string
	}{
		{"empty", "database_url", "", "is empty"},
		{"too big", "database_url", strings.Repeat("x", maxSecretSize+1) + canary, "at most 512000"},
		{"bad name", "database url", canary, `secret name "database url"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := SetSecret(t.Context(), api, "svc", c.logical, secret.New(c.value))
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), canary) {
				t.Errorf("SetSecret = %v, want an error saying %q without the value", err, c.want)
			}
		})
	}
}

// bindSecrets points each logical secret at its newest version and lists
// what is missing with the way to make it.
func TestBindSecrets(t *testing.T) {
	env := &envfile.Environment{Name: "staging", Stack: "svc", Image: "registry.example/e2e-app", AppEnv: "staging",
		Files:     []string{"../../docker-compose.prod.yml", "testdata/plan/override.yml"},
		Variables: map[string]string{"APP_HOST": "svc.example.com", "ROUTER": "svc", "POSTGRES_IMAGE": "registry.example/postgres:e2e"}}
	load := func(t *testing.T) *Stack {
		st, err := loadStack(env, Release{Repository: env.Image, Tag: "v1.0.0"}, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	legacy := swarm.Secret{ID: "old", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "svc_postgres_password"}}}
	tests := []struct {
		name    string
		secrets []swarm.Secret
		wantOK  string
		wantErr []string
	}{
		{"newest wins", []swarm.Secret{
			versionedSecret("a", "svc", "database_url", 1), versionedSecret("b", "svc", "database_url", 2),
			versionedSecret("c", "svc", "postgres_password", 1), versionedSecret("d", "other", "database_url", 9),
		}, "2 present (database_url v2, postgres_password v1)", nil},
		{"a logical secret without a version", []swarm.Secret{versionedSecret("a", "svc", "database_url", 1)}, "",
			[]string{"no version of postgres_password", "go tool mage secrets:set staging NAME"}},
		{"an unversioned secret from before", []swarm.Secret{versionedSecret("a", "svc", "database_url", 1), legacy}, "",
			[]string{"no version of postgres_password", "svc_postgres_password is an unversioned secret from before versioning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := load(t)
			live := &Live{Secrets: map[string]swarm.Secret{}}
			for _, s := range tt.secrets {
				live.Secrets[s.Spec.Name] = s
			}
			var cs Checks
			ok := st.bindSecrets(versionsOf("svc", tt.secrets), live, &cs)
			if ok != (tt.wantErr == nil) {
				t.Fatalf("bindSecrets = %v; checks %+v", ok, cs)
			}
			var out bytes.Buffer
			cs.Print(&out)
			if tt.wantOK != "" && !strings.Contains(out.String(), tt.wantOK) {
				t.Errorf("preflight says\n%s\nwant %q", out.String(), tt.wantOK)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(out.String(), w) {
					t.Errorf("preflight says\n%s\nwant %q", out.String(), w)
				}
			}
			if ok && st.Config.Secrets["database_url"].Name != "svc_database_url_v2" {
				t.Errorf("database_url is bound to %q", st.Config.Secrets["database_url"].Name)
			}
		})
	}
}

// relink moves recorded specs to the newest version of each logical
// secret (or of the ones named), whatever version or naming they recorded.
func TestRelink(t *testing.T) {
	versions := versionsOf("svc", []swarm.Secret{
		versionedSecret("db1", "svc", "database_url", 1), versionedSecret("db2", "svc", "database_url", 2),
		versionedSecret("pg1", "svc", "postgres_password", 1), versionedSecret("pg3", "svc", "postgres_password", 3),
	})
	spec := func(names ...string) swarm.ServiceSpec {
		var refs []*swarm.SecretReference
		for _, n := range names {
			refs = append(refs, &swarm.SecretReference{SecretName: n, SecretID: "stale", File: &swarm.SecretReferenceFileTarget{Name: "x"}})
		}
		return swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Secrets: refs}}}
	}
	names := func(s swarm.ServiceSpec) (out []string) {
		for _, r := range s.TaskTemplate.ContainerSpec.Secrets {
			out = append(out, r.SecretName+"="+r.SecretID)
		}
		return out
	}
	tests := []struct {
		name string
		only []string
		in   swarm.ServiceSpec
		want []string
	}{
		{"an old version", nil, spec("svc_database_url_v1"), []string{"svc_database_url_v2=db2"}},
		{"a name from before versioning", nil, spec("svc_postgres_password"), []string{"svc_postgres_password_v3=pg3"}},
		{"only the rotated one moves", []string{"database_url"}, spec("svc_postgres_password_v1", "svc_database_url_v1"),
			[]string{"svc_database_url_v2=db2", "svc_postgres_password_v1=stale"}},
		{"another stack's or an explicit name stays", nil, spec("shared_cert", "svc_unknown_v1"),
			[]string{"shared_cert=stale", "svc_unknown_v1=stale"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := names(tt.in)
			specs := map[string]swarm.ServiceSpec{"app": tt.in}
			need := relink("svc", specs, versions, tt.only...)
			if got := names(specs["app"]); !slices.Equal(got, tt.want) {
				t.Errorf("refs %v, want %v", got, tt.want)
			}
			if len(need) != len(tt.want) {
				t.Errorf("need %v, want %d names", need, len(tt.want))
			}
			if !slices.Equal(names(tt.in), before) {
				t.Error("relink changed the caller's spec in place")
			}
		})
	}
}

func TestPlanPrune(t *testing.T) {
	versions := versionsOf("svc", []swarm.Secret{
		versionedSecret("db1", "svc", "database_url", 1), versionedSecret("db2", "svc", "database_url", 2),
		versionedSecret("db3", "svc", "database_url", 3), versionedSecret("db4", "svc", "database_url", 4),
		versionedSecret("pg1", "svc", "postgres_password", 1),
	})
	users := map[string][]string{"db2": {"worker"}, "db4": {"app"}, "pg1": {"postgres"}}
	tests := []struct {
		name string
		keep int
		want []string // the names removed
	}{
		{"keep 2: an unused old one goes, a used one stays", 2, []string{"svc_database_url_v1"}},
		{"keep 1", 1, []string{"svc_database_url_v3", "svc_database_url_v1"}},
		{"keep more than there are", 9, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var removed []string
			for _, p := range planPrune(versions, users, tt.keep) {
				if p.Keep == "" {
					removed = append(removed, p.Version.Name)
				}
			}
			if !slices.Equal(removed, tt.want) {
				t.Errorf("removed %v, want %v", removed, tt.want)
			}
		})
	}
}

func TestReadSecretFrom(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"printf", "s3cret", "s3cret", ""},
		{"echo adds a newline, dropped", "s3cret\n", "s3cret", ""},
		{"a CRLF too", "s3cret\r\n", "s3cret", ""},
		{"only one newline is dropped", "s3cret\n\n", "s3cret\n", ""},
		{"spaces are kept", " s3cret ", " s3cret ", ""},
		{"empty", "", "", "is empty"},
		{"just a newline", "\n", "", "is empty"},
		{"too big", strings.Repeat("x", maxSecretSize+1), "", "Swarm keeps at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := readSecretFrom(strings.NewReader(tt.in), "database_url")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "secrets:set ENV database_url") {
					t.Fatalf("err = %v, want %q and how to give it", err, tt.err)
				}
				return
			}
			if err != nil || v.Reveal() != tt.want {
				t.Fatalf("= %q, %v; want %q", v.Reveal(), err, tt.want)
			}
		})
	}
}

// With the proxy's certificates from secrets, secrets:prune prunes the
// proxy stack's versions too: old certificates pile up as they are rotated.
func TestPruneSecretsProxyStack(t *testing.T) {
	s, api, out := testSession(t, 0)
	s.Env.Proxy = &envfile.Proxy{Stack: "proxy", CA: envfile.CASecrets}
	for i, id := range []string{"c1", "c2", "c3"} {
		api.AddSecret(versionedSecret(id, "proxy", "tls_certificate", i+1))
	}
	api.AddSecret(versionedSecret("o1", "other", "tls_certificate", 1)) // another stack's: not ours
	api.AddService(withDefaults(swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "proxy_traefik", Labels: map[string]string{StackLabel: "proxy"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "traefik:v3.6",
			Secrets: []*swarm.SecretReference{{SecretName: "proxy_tls_certificate_v2", SecretID: "c2"}}}},
	}))

	if err := s.PruneSecrets(t.Context(), 1, false); err != nil {
		t.Fatalf("prune: %v\n%s", err, out.String())
	}
	var left []string
	for _, sec := range api.Secrets() {
		left = append(left, sec.ID)
	}
	slices.Sort(left)
	// s1: the app's database_url v1, newest and used; c3 newest; c2 used.
	if want := []string{"c2", "c3", "o1", "s1"}; !slices.Equal(left, want) {
		t.Errorf("secrets left %v, want %v\n%s", left, want, out.String())
	}
	if !strings.Contains(out.String(), "keep    proxy_tls_certificate_v2 (used by traefik)") || !strings.Contains(out.String(), "Pruned 1 secret version(s).") {
		t.Errorf("output:\n%s", out.String())
	}
}
