package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/fractionate/service-template/magefiles/stack"
)

// load reads the committed proxy file with the variables given, and the
// override of its certificates (ACMEFile unless given).
func load(t *testing.T, env map[string]string, certificates ...string) (*types.Project, error) {
	t.Helper()
	if len(certificates) == 0 {
		certificates = []string{ACMEFile}
	}
	files := []string{"../../" + File}
	for _, f := range certificates {
		files = append(files, "../../"+f)
	}
	return stack.Load(t.Context(), "proxy", env, files...)
}

func TestCommittedFileKeepsTheRules(t *testing.T) {
	p, err := load(t, map[string]string{"ACME_EMAIL": "ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(p); err != nil {
		t.Errorf("deploy/proxy.yml breaks the proxy's rules:\n%v", err)
	}
	// The production rules of services hold too: a pinned image, a health
	// check, rollback on failure (the front's are for what is behind it).
	if err := stack.CheckServices(p, ""); err != nil {
		t.Errorf("deploy/proxy.yml breaks the production rules:\n%v", err)
	}
	s := p.Services[Service]
	for key, want := range map[string]string{
		"TRAEFIK_CERTIFICATESRESOLVERS_ACME_ACME_CASERVER":            "https://acme-v02.api.letsencrypt.org/directory",
		"TRAEFIK_ENTRYPOINTS_WEB_HTTP_REDIRECTIONS_ENTRYPOINT_TO":     ":443",
		"TRAEFIK_ENTRYPOINTS_WEB_HTTP_REDIRECTIONS_ENTRYPOINT_SCHEME": "https",
		"TRAEFIK_PROVIDERS_SWARM_REFRESHSECONDS":                      "5s",
	} {
		if got := env(s, key); got != want {
			t.Errorf("by default %s = %q, want %q", key, got, want)
		}
	}
}

// The per-environment values come from variables: the CA (Let's Encrypt's
// staging endpoint, or a test CA), the ports, the image.
func TestVariables(t *testing.T) {
	p, err := load(t, map[string]string{
		"ACME_EMAIL": "ops@example.com", "ACME_CA_SERVER": "https://acme-staging-v02.api.letsencrypt.org/directory",
		"PROXY_HTTP_PORT": "8000", "PROXY_HTTPS_PORT": "8443", "TRAEFIK_IMAGE": "local/traefik:v3.6",
		"PROXY_DOCKER_SOCKET": "/run/user/1000/docker.sock",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Services[Service]
	if s.Image != "local/traefik:v3.6" {
		t.Errorf("image %q", s.Image)
	}
	for _, v := range s.Volumes {
		if v.Target == "/var/run/docker.sock" && v.Source != "/run/user/1000/docker.sock" {
			t.Errorf("the socket is bound from %q", v.Source)
		}
	}
	if got := env(s, "TRAEFIK_CERTIFICATESRESOLVERS_ACME_ACME_CASERVER"); !strings.Contains(got, "acme-staging") {
		t.Errorf("CA server %q", got)
	}
	// The redirect names the port clients use, not the container's.
	if got := env(s, "TRAEFIK_ENTRYPOINTS_WEB_HTTP_REDIRECTIONS_ENTRYPOINT_TO"); got != ":8443" {
		t.Errorf("redirect to %q, want :8443", got)
	}
	var published []string
	for _, pc := range s.Ports {
		published = append(published, pc.Published)
	}
	if strings.Join(published, ",") != "8000,8443" {
		t.Errorf("published %v", published)
	}
	if _, err := load(t, nil); err == nil || !strings.Contains(err.Error(), "ACME_EMAIL") {
		t.Errorf("without ACME_EMAIL: %v, want an error naming it", err)
	}
}

// With certificates from secrets: no ACME resolver, no volume, no node
// label; TLS on websecure, the file provider reading a config, the
// certificate and key as secrets (the key readable by root only).
func TestCommittedSecretsFileKeepsTheRules(t *testing.T) {
	p, err := load(t, nil, SecretsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(Check(p), stack.CheckServices(p, "")); err != nil {
		t.Errorf("deploy/proxy.yml with %s breaks the rules:\n%v", SecretsFile, err)
	}
	s := p.Services[Service]
	for k := range s.Environment {
		if strings.Contains(k, "CERTRESOLVER") || strings.Contains(k, "ACME") {
			t.Errorf("environment %s with certificates from secrets", k)
		}
	}
	if len(s.Volumes) != 1 || s.Volumes[0].Target != "/var/run/docker.sock" || len(p.Volumes) != 0 {
		t.Errorf("volumes %+v, top-level %v: want the socket only", s.Volumes, p.Volumes)
	}
	if c := constraints(s); len(c) != 1 || c[0] != "node.role == manager" {
		t.Errorf("constraints %v: want node.role == manager only", c)
	}
	if env(s, "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS") != "true" || len(s.Configs) != 1 || s.Configs[0].Target != env(s, "TRAEFIK_PROVIDERS_FILE_FILENAME") {
		t.Errorf("TLS %q, configs %+v, file provider %q", env(s, "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS"), s.Configs, env(s, "TRAEFIK_PROVIDERS_FILE_FILENAME"))
	}
	var secrets []string
	for _, r := range s.Secrets {
		secrets = append(secrets, r.Source)
		if r.Source == KeySecret && (r.Mode == nil || *r.Mode != 0o400) {
			t.Errorf("the key's mode %v, want 0400", r.Mode)
		}
		if !p.Secrets[r.Source].External {
			t.Errorf("secret %s is not external", r.Source)
		}
	}
	if strings.Join(secrets, ",") != strings.Join(Secrets, ",") {
		t.Errorf("secrets %v, want %v", secrets, Secrets)
	}
}

func TestCheckFindsEachBreach(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *types.Project, s *types.ServiceConfig)
		want   string
	}{
		{"ingress port", func(_ *types.Project, s *types.ServiceConfig) { s.Ports[1].Mode = "ingress" }, `443 is published in "ingress" mode`},
		{"no port 80", func(_ *types.Project, s *types.ServiceConfig) { s.Ports = s.Ports[1:] }, "nothing publishes 80"},
		{"network owned by the stack", func(p *types.Project, _ *types.ServiceConfig) {
			n := p.Networks[Network]
			n.External = false
			p.Networks[Network] = n
		}, "networks.traefik-public: must be declared external"},
		{"not on the network", func(_ *types.Project, s *types.ServiceConfig) { delete(s.Networks, Network) }, "does not join traefik-public"},
		{"writable socket", func(_ *types.Project, s *types.ServiceConfig) {
			for i := range s.Volumes {
				s.Volumes[i].ReadOnly = false
			}
		}, "docker.sock is writable"},
		{"no certificates", func(_ *types.Project, s *types.ServiceConfig) {
			delete(s.Environment, "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS_CERTRESOLVER")
		}, "websecure serves no certificate"},
		{"exposed by default", func(_ *types.Project, s *types.ServiceConfig) {
			s.Environment["TRAEFIK_PROVIDERS_SWARM_EXPOSEDBYDEFAULT"] = nil
		}, "EXPOSEDBYDEFAULT"},
		{"any node", func(_ *types.Project, s *types.ServiceConfig) { s.Deploy.Placement.Constraints = nil }, "node.role == manager"},
		{"two replicas with ACME", func(_ *types.Project, s *types.ServiceConfig) {
			two := 2
			s.Deploy.Replicas = &two
		}, "want 1 with ACME"},
		{"ACME storage off the volume", func(_ *types.Project, s *types.ServiceConfig) {
			v := "/tmp/acme.json"
			s.Environment["TRAEFIK_CERTIFICATESRESOLVERS_ACME_ACME_STORAGE"] = &v
		}, "/tmp/acme.json is not on a volume"},
		{"start-first", func(_ *types.Project, s *types.ServiceConfig) { s.Deploy.UpdateConfig.Order = "start-first" }, "want stop-first"},
		{"no health check", func(_ *types.Project, s *types.ServiceConfig) { s.HealthCheck = nil }, "healthcheck: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := load(t, map[string]string{"ACME_EMAIL": "ops@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			s := p.Services[Service]
			tt.change(p, &s)
			p.Services[Service] = s
			err = Check(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// With pebble as the CA, the ACME storage may stay in the container: pebble
// forgets its accounts when it restarts. With any other CA it may not.
func TestACMEStorageOffAVolumeOnlyWithPebble(t *testing.T) {
	for ca, ok := range map[string]bool{PebbleDirectory + "dir": true, "https://acme-v02.api.letsencrypt.org/directory": false} {
		p, err := load(t, map[string]string{"ACME_EMAIL": "ops@example.com", "ACME_CA_SERVER": ca})
		if err != nil {
			t.Fatal(err)
		}
		s := p.Services[Service]
		v := "/pebble-acme.json"
		s.Environment["TRAEFIK_CERTIFICATESRESOLVERS_ACME_ACME_STORAGE"] = &v
		p.Services[Service] = s
		err = Check(p)
		if got := err == nil; got != ok {
			t.Errorf("CA %s, storage off the volume: %v, want accepted=%v", ca, err, ok)
		}
	}
}
