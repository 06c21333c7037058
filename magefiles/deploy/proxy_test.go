package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/proxy"
)

func node(id, host string, manager, labelled bool) swarm.Node {
	n := swarm.Node{ID: id, Description: swarm.NodeDescription{Hostname: host}, Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker}}
	if manager {
		n.Spec.Role = swarm.NodeRoleManager
	}
	if labelled {
		n.Spec.Labels = map[string]string{proxy.CertificatesLabel: "true"}
	}
	return n
}

func TestChooseCertificatesNode(t *testing.T) {
	m1, m2, w1 := node("m1", "manager-1", true, false), node("m2", "manager-2", true, false), node("w1", "worker-1", false, false)
	m1l, m2l, w1l := node("m1", "manager-1", true, true), node("m2", "manager-2", true, true), node("w1", "worker-1", false, true)
	tests := []struct {
		name      string
		nodes     []swarm.Node
		want      string // the node's ID
		label     bool
		wantError string
	}{
		{name: "the only manager", nodes: []swarm.Node{m1, w1}, want: "m1", label: true},
		{name: "the labelled one", nodes: []swarm.Node{m1, m2l, w1}, want: "m2"},
		{name: "the named one", nodes: []swarm.Node{m1, m2, w1}, want: "manager-2", label: true},
		{name: "the named one, labelled", nodes: []swarm.Node{m1, m2l}, want: "manager-2"},
		{name: "several managers, none named", nodes: []swarm.Node{m1, m2}, wantError: "name the one that keeps acme.json in environments.e.proxy.node"},
		{name: "two labelled", nodes: []swarm.Node{m1l, m2l}, wantError: "nodes manager-1, manager-2 all carry traefik-public.certificates=true"},
		{name: "named, another labelled", nodes: []swarm.Node{m1l, m2}, want: "manager-2", wantError: "node manager-1 keeps the certificates"},
		{name: "named, unknown", nodes: []swarm.Node{m1}, want: "nope", wantError: "no node is named nope (nodes: manager-1)"},
		{name: "named, a worker", nodes: []swarm.Node{m1, w1}, want: "worker-1", wantError: "node worker-1 is a worker"},
		{name: "a labelled worker", nodes: []swarm.Node{m1, w1l}, wantError: "node worker-1 is a worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			named := ""
			if strings.HasPrefix(tt.name, "named") || strings.HasPrefix(tt.name, "the named") {
				named = tt.want
			}
			n, label, err := chooseCertificatesNode(tt.nodes, "e", named)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("error %v, want %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.ID != tt.want && n.Description.Hostname != tt.want || label != tt.label {
				t.Errorf("node %s (%s) label %v, want %s label %v", n.ID, n.Description.Hostname, label, tt.want, tt.label)
			}
		})
	}
}

// The proxy's environment: the app environment's Swarm, the proxy's own
// stack and files, the variables its section sets.
func TestProxyEnvironment(t *testing.T) {
	env := &envfile.Environment{Name: "local", Stack: "app-local", Endpoint: "unix:///x.sock", AppEnv: "staging", Deadline: 5 * 60e9, History: 20,
		Proxy: &envfile.Proxy{Stack: "proxy", CA: envfile.CAPebble, HTTPPort: 8000, HTTPSPort: 8443, Variables: map[string]string{"TRAEFIK_IMAGE": "t:v3"}}}
	pe := proxyEnvironment(env, "/repo", "/cache/pebble/local")
	if pe.Stack != "proxy" || pe.Endpoint != "unix:///x.sock" || pe.Smoke != nil || pe.Proxy != nil {
		t.Errorf("environment %+v", pe)
	}
	if want := []string{"/repo/deploy/proxy.yml", "/repo/deploy/proxy-acme.yml", "/repo/deploy/proxy-pebble.yml"}; strings.Join(pe.Files, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, want %v", pe.Files, want)
	}
	for k, want := range map[string]string{"ACME_CA_SERVER": "https://tasks.pebble:14000/dir", "PROXY_HTTP_PORT": "8000", "PROXY_HTTPS_PORT": "8443",
		"PEBBLE_DIR": "/cache/pebble/local", "TRAEFIK_IMAGE": "t:v3", "ACME_EMAIL": "ops@local.pebble.test"} {
		if got := pe.Variables[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if env.Proxy.Variables["ACME_CA_SERVER"] != "" {
		t.Error("the environment's own variables were changed")
	}
	env.Proxy = &envfile.Proxy{Stack: "edge", CA: envfile.CALetsEncryptStaging, Email: "ops@example.com", HTTPPort: 80, HTTPSPort: 443}
	pe = proxyEnvironment(env, "/repo", "")
	if len(pe.Files) != 2 || pe.Variables["ACME_EMAIL"] != "ops@example.com" || !strings.Contains(pe.Variables["ACME_CA_SERVER"], "acme-staging") || pe.Variables["PEBBLE_DIR"] != "" {
		t.Errorf("Let's Encrypt staging: %v %v", pe.Files, pe.Variables)
	}
}

// The committed proxy files load as deploy:proxy loads them, keep the
// proxy's rules, and name Traefik's image.
func TestCommittedProxyFiles(t *testing.T) {
	envs, err := envfile.Load("../../"+envfile.DefaultPath, "../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range envs.Names() {
		env := envs.Environments[name]
		if env.Proxy == nil {
			t.Errorf("environment %s has no proxy section", name)
			continue
		}
		dir := ""
		if env.Proxy.CA == envfile.CAPebble {
			dir = t.TempDir()
			if err := proxy.PebbleFiles(dir); err != nil {
				t.Fatal(err)
			}
		}
		s := &Session{Env: proxyEnvironment(env, "../..", dir), Lookup: func(string) (string, bool) { return "", false }}
		rel, err := proxyImage(s.Env, s.Lookup)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(rel.Repository, "traefik") || rel.Tag != "v3.6" {
			t.Errorf("%s: Traefik's image %+v", name, rel)
		}
		var cs Checks
		s.checkProxyFiles(&cs)
		if err := cs.Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if dir != "" && !strings.HasPrefix(s.Env.Variables["PEBBLE_DIR"], filepath.Clean(dir)) {
			t.Errorf("%s: PEBBLE_DIR %q", name, s.Env.Variables["PEBBLE_DIR"])
		}
	}
}

// deploy:to refuses a stack on traefik-public while it does not exist,
// pointing at deploy:proxy; deploy:proxy plans to make it.
func TestProxyNetwork(t *testing.T) {
	d := &Desired{Stack: "svc", Networks: map[string]client.NetworkCreateOptions{}, ExternalNetworks: []string{"traefik-public"}}
	live := &Live{Networks: map[string]bool{}}
	var cs Checks
	checkNetworks(d, live, &cs)
	if err := cs.Err(); err == nil || !strings.Contains(err.Error(), "deploy it first: go tool mage deploy:proxy ENV") {
		t.Errorf("deploy:to's check: %v", err)
	}
	cs = nil
	s := &Session{}
	if !s.proxyNetwork(t.Context(), d, live, &cs) {
		t.Fatal(cs.Err())
	}
	n, ok := d.Networks["traefik-public"]
	if !ok || n.Driver != "overlay" || !n.Attachable || len(d.ExternalNetworks) != 0 {
		t.Errorf("desired networks %+v, external %v", d.Networks, d.ExternalNetworks)
	}
	p := makePlan("e", Release{}, d, live)
	if len(p.CreateNetworks) != 1 || p.CreateNetworks[0] != "traefik-public" {
		t.Errorf("the plan creates %v", p.CreateNetworks)
	}
}

// A restart policy without max_attempts (the proxy's) is what Swarm
// stores as 0: a second deploy of the same files changes nothing.
func TestRestartPolicyWithoutMaxAttempts(t *testing.T) {
	zero := uint64(0)
	desired := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "traefik:v3.6"},
		RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}}}
	live := desired
	live.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, MaxAttempts: &zero}
	if c := diffService("traefik", withDefaults(live), withDefaults(desired)); c.Action != Unchanged {
		t.Errorf("%s: %v", c.Action, c.Changed)
	}
	if desired.TaskTemplate.RestartPolicy.MaxAttempts != nil {
		t.Error("the desired spec was changed in place")
	}
}

// The loader sorts merged mounts by target; a live proxy whose spec has
// the same mounts in another order keeps it, so the plan changes nothing.
func TestKeepMountOrder(t *testing.T) {
	sock := mount.Mount{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true}
	acme := mount.Mount{Type: mount.TypeVolume, Source: "proxy_acme", Target: "/acme"}
	other := mount.Mount{Type: mount.TypeVolume, Source: "proxy_other", Target: "/acme"}
	spec := func(ms ...mount.Mount) swarm.ServiceSpec {
		return withDefaults(swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "proxy_traefik"},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "traefik:v3.6", Mounts: ms}}})
	}
	for _, tt := range []struct {
		name      string
		live      []mount.Mount
		unchanged bool
	}{
		{"the same mounts, the other way round", []mount.Mount{sock, acme}, true},
		{"another volume", []mount.Mount{sock, other}, false},
		{"one mount fewer", []mount.Mount{sock}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &Desired{Services: map[string]swarm.ServiceSpec{"traefik": spec(acme, sock)}}
			live := &Live{Services: map[string]swarm.Service{"traefik": {Spec: spec(tt.live...)}}}
			keepMountOrder(d, live)
			c := diffService("traefik", live.Spec("traefik"), d.Services["traefik"])
			if got := c.Action == Unchanged; got != tt.unchanged {
				t.Errorf("%s: %v, want unchanged=%v", c.Action, c.Changed, tt.unchanged)
			}
		})
	}
}
