// Package proxy knows the front proxy's stack file (deploy/proxy.yml): where
// it is, the network it shares with the stacks it fronts, and the rules the
// file keeps so that every stack behind it can be reached over HTTPS and
// updated without a client noticing. mage lint and a deploy preflight can
// ask it about the file; the file itself says why each setting is there.
package proxy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

const (
	// File is the proxy's stack file, relative to the repository root.
	File = "deploy/proxy.yml"
	// Network is the overlay network the proxy and the services it routes
	// to share. It outlives any one stack: made once per Swarm.
	Network = "traefik-public"
	// Service is the proxy's service in File.
	Service = "traefik"
	// CertificatesLabel marks the node that keeps the ACME storage volume.
	CertificatesLabel = "traefik-public.certificates"
)

// env returns the value of a TRAEFIK_* setting of s, "" when unset.
func env(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// Check returns every way p (File loaded with stack.Load) breaks the
// proxy's rules, joined, each naming the key at fault:
//
//   - the Traefik service publishes 80 and 443 in host mode (no routing
//     mesh: the client's address is kept, and no IPVS is needed);
//   - it joins Network, declared external and not owned by the stack;
//   - it reads the Swarm API from the socket, read-only, on a manager;
//   - it routes only services that ask (exposedByDefault=false) and
//     reaches them over Network;
//   - it has a health check and updates stop-first (host ports cannot be
//     held by two tasks on one node);
//   - websecure serves certificates: from an ACME resolver (ACMEFile) or,
//     with TLS on and no resolver, from the file provider (SecretsFile);
//   - with ACME, its storage is on a volume, one replica keeps it, and a
//     node label pins it to one node.
func Check(p *types.Project) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	s, ok := p.Services[Service]
	if !ok {
		return fmt.Errorf("services.%s: missing; the proxy stack runs Traefik as %q", Service, Service)
	}
	at := "services." + Service

	for _, port := range []uint32{80, 443} {
		i := slices.IndexFunc(s.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == port })
		switch {
		case i < 0:
			fail("%s.ports: nothing publishes %d", at, port)
		case s.Ports[i].Mode != "host":
			fail("%s.ports: %d is published in %q mode, want host: the routing mesh hides the client's address and needs IPVS", at, port, s.Ports[i].Mode)
		}
	}

	if _, joined := s.Networks[Network]; !joined {
		fail("%s.networks: does not join %s, where the services it routes to are", at, Network)
	}
	if n, ok := p.Networks[Network]; !ok || !bool(n.External) {
		fail("networks.%s: must be declared external: it is shared by every stack behind the proxy and outlives each", Network)
	}

	socket := slices.IndexFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/var/run/docker.sock" })
	if socket < 0 {
		fail("%s.volumes: no /var/run/docker.sock: the Swarm provider reads services from it", at)
	} else if !s.Volumes[socket].ReadOnly {
		fail("%s.volumes: /var/run/docker.sock is writable; Traefik only reads it (read_only: true)", at)
	}
	if !slices.Contains(constraints(s), "node.role == manager") {
		fail("%s.deploy.placement.constraints: lacks node.role == manager: only managers answer the Swarm API", at)
	}

	if v := env(s, "TRAEFIK_PROVIDERS_SWARM_EXPOSEDBYDEFAULT"); v != "false" {
		fail("%s.environment.TRAEFIK_PROVIDERS_SWARM_EXPOSEDBYDEFAULT: %q, want false: only services labelled traefik.enable=true are routed", at, v)
	}
	if v := env(s, "TRAEFIK_PROVIDERS_SWARM_NETWORK"); v != Network {
		fail("%s.environment.TRAEFIK_PROVIDERS_SWARM_NETWORK: %q, want %s: a service on several networks is reached on the proxy's", at, v, Network)
	}

	if hc := s.HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
		fail("%s.healthcheck: missing; Swarm needs it to tell a failed proxy upgrade", at)
	}
	if d := s.Deploy; d == nil || d.UpdateConfig == nil || d.UpdateConfig.Order != "stop-first" {
		fail("%s.deploy.update_config.order: want stop-first: a new task cannot bind the host ports the old one holds", at)
	}

	tlsOn := env(s, "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS") == "true"
	files := env(s, "TRAEFIK_PROVIDERS_FILE_FILENAME") != "" || env(s, "TRAEFIK_PROVIDERS_FILE_DIRECTORY") != ""
	if env(s, "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS_CERTRESOLVER") == "" && (!tlsOn || !files) {
		fail("%s.environment: websecure serves no certificate: give %s (an ACME CA) or %s (certificates from secrets) after %s", at, ACMEFile, SecretsFile, File)
	}

	if storage := acmeStorage(s); storage != "" {
		if d := s.Deploy; d == nil || d.Mode == "global" || d.Replicas == nil || *d.Replicas != 1 {
			fail("%s.deploy.replicas: want 1 with ACME: two replicas would each order certificates and keep their own acme.json", at)
		}
		if !onVolume(s, storage) && !testCA(s) {
			fail("%s.volumes: the ACME storage %s is not on a volume: certificates would be ordered again at every restart (and hit the CA's rate limits)", at, storage)
		}
		if !slices.Contains(constraints(s), "node.labels."+CertificatesLabel+" == true") {
			fail("%s.deploy.placement.constraints: lacks node.labels.%s == true: the ACME volume lives on one node, and the task must stay there", at, CertificatesLabel)
		}
	}
	return errors.Join(errs...)
}

// acmeStorage returns the path of the first ACME resolver's storage file,
// "" when no resolver uses ACME.
func acmeStorage(s types.ServiceConfig) string {
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if strings.HasPrefix(k, "TRAEFIK_CERTIFICATESRESOLVERS_") && strings.HasSuffix(k, "_ACME_STORAGE") {
			return env(s, k)
		}
	}
	return ""
}

// testCA says whether the ACME CA is pebble, the test CA beside Traefik
// (deploy/proxy-pebble.yml): it forgets its accounts when it restarts, so
// what Traefik would keep of it is better lost with the container.
func testCA(s types.ServiceConfig) bool {
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if strings.HasPrefix(k, "TRAEFIK_CERTIFICATESRESOLVERS_") && strings.HasSuffix(k, "_ACME_CASERVER") && strings.HasPrefix(env(s, k), PebbleDirectory) {
			return true
		}
	}
	return false
}

// PebbleDirectory is pebble's ACME directory, on traefik-public.
const PebbleDirectory = "https://tasks.pebble:14000/"

// onVolume says whether path is inside a named volume mounted in s.
func onVolume(s types.ServiceConfig, path string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && (path == v.Target || strings.HasPrefix(path, strings.TrimSuffix(v.Target, "/")+"/")) {
			return true
		}
	}
	return false
}

func constraints(s types.ServiceConfig) []string {
	if s.Deploy == nil {
		return nil
	}
	var out []string
	for _, c := range s.Deploy.Placement.Constraints {
		out = append(out, strings.Join(strings.Fields(c), " "))
	}
	return out
}
