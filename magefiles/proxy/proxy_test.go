package proxy

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/fractionate/service-template/magefiles/stack"
)

// load reads the committed proxy file with the variables given.
func load(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	return stack.Load(t.Context(), "proxy", env, "../../"+File)
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
	})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Services[Service]
	if s.Image != "local/traefik:v3.6" {
		t.Errorf("image %q", s.Image)
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
		{"writable socket", func(_ *types.Project, s *types.ServiceConfig) { s.Volumes[0].ReadOnly = false }, "docker.sock is writable"},
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
