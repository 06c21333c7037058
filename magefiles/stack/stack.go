// Package stack reads the Compose files the way Compose and Swarm do, and
// holds the rules a production stack file keeps. mage lint asks it about the
// committed files; a deploy preflight can ask it about the stack it is about
// to deploy.
package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/fractionate/service-template/magefiles/release"
)

// Load reads files in order, each one overriding the ones before, with
// variables taken from env only: never from the process environment or a
// .env file, so the result does not depend on the shell it runs in. name is
// the project (stack) name.
func Load(ctx context.Context, name string, env map[string]string, files ...string) (*types.Project, error) {
	if len(files) == 0 {
		return nil, errors.New("no compose file given")
	}
	dir, err := filepath.Abs(filepath.Dir(files[0]))
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", files[0], err)
	}
	details := types.ConfigDetails{WorkingDir: dir, Environment: types.Mapping(maps.Clone(env))}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("compose file: %w", err)
		}
		// The production file keeps `version: "3.x"` for docker stack deploy
		// in Docker CLIs before 23, which refuse a file without it;
		// compose-go would log a warning that it is obsolete. Blanking the
		// line keeps line numbers. Other versions stay, and are warned of.
		b = topLevelVersion.ReplaceAll(b, nil)
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f, Content: b})
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		// docker stack deploy knows no profiles: it deploys every service.
		o.Profiles = []string{"*"}
	})
	if err != nil {
		return nil, fmt.Errorf("compose files %s: %w", strings.Join(files, ", "), err)
	}
	return p, nil
}

var topLevelVersion = regexp.MustCompile(`(?m)^version:[ \t]*["']?3(\.\d+)?["']?[ \t]*(#.*)?$`)

// CheckProduction returns every way p breaks the rules of a production
// stack, joined, each naming the service and key at fault. ours is the
// repository of this project's own image (ghcr.io/acme/api), held to a
// stricter rule than third-party images; "" when the stack has none. It
// never quotes an environment value: one may be a secret.
func CheckProduction(p *types.Project, ours string) error {
	return errors.Join(append(checkServices(p, ours), checkFront(p, ours)...)...)
}

// CheckServices is CheckProduction without the front's rules: for a stack
// that is not behind the proxy, the proxy's own (deploy/proxy.yml).
func CheckServices(p *types.Project, ours string) error {
	return errors.Join(checkServices(p, ours)...)
}

// checkServices holds every service to the rules of images, health
// checks, secrets and rollbacks.
func checkServices(p *types.Project, ours string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		at := "services." + name
		if err := pinned(s.Image, ours); err != nil {
			fail("%s.image: %w", at, err)
		}
		if hc := s.HealthCheck; hc != nil && (hc.Disable || (len(hc.Test) > 0 && hc.Test[0] == "NONE")) {
			fail("%s.healthcheck: disabled; Swarm needs it to tell a failed update and roll it back", at)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
			if secretLooking(k, s.Environment[k]) {
				fail("%s.environment.%s: a secret in the service's environment is visible to docker inspect; use a Docker secret and %s_FILE=/run/secrets/...", at, k, k)
			}
		}
		action := "pause (the default)"
		if d := s.Deploy; d != nil {
			if d.EndpointMode == "dnsrr" {
				fail("%s.deploy.endpoint_mode: dnsrr cannot serve ports published through the routing mesh; it belongs in test override files", at)
			}
			if d.UpdateConfig != nil && d.UpdateConfig.FailureAction != "" {
				action = d.UpdateConfig.FailureAction
			}
		}
		if action != "rollback" {
			fail("%s.deploy.update_config.failure_action: %s, want rollback: a failed update must undo itself", at, action)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		if !bool(p.Secrets[name].External) {
			fail("secrets.%s: not external; production secrets are made once with docker secret create, never read from a file or the environment at deploy time", name)
		}
	}
	return errs
}

// ProxyNetwork is the front proxy's network (deploy/proxy.yml): external,
// shared by the stacks behind the proxy.
const ProxyNetwork = "traefik-public"

// checkFront holds the services to the front the standard describes: the
// app (AppService, or any service routed by labels) reached only through
// the proxy, on its network, with Traefik's health check on /ready and
// retries on reads only, and resource limits and reservations the
// scaling guide's percentages refer to; everything else (the database)
// on internal networks only, publishing nothing.
func checkFront(p *types.Project, ours string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	proxyNet, declared := p.Networks[ProxyNetwork]
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		at := "services." + name
		var labels types.Labels
		if s.Deploy != nil {
			labels = s.Deploy.Labels
		}
		routed := labels["traefik.enable"] == "true"
		if len(s.Ports) > 0 {
			fail("%s.ports: published; in production a service is reached through the proxy (traefik labels on %s) or not at all", at, ProxyNetwork)
		}
		_, onProxy := s.Networks[ProxyNetwork]
		if name == AppService && !routed {
			fail("%s.deploy.labels: traefik.enable=true missing: the app is reached only through the proxy", at)
		}
		if onProxy && !routed {
			fail("%s.networks: on %s without traefik.enable=true: only what the proxy routes joins its network", at, ProxyNetwork)
		}
		if routed {
			errs = append(errs, checkRouted(at, s, labels, onProxy)...)
		}
		if !routed && !sameImage(s.Image, ours) {
			for _, n := range slices.Sorted(maps.Keys(s.Networks)) {
				if nc, ok := p.Networks[n]; !ok || !nc.Internal {
					fail("%s.networks: %s is not internal: true; a service the proxy does not route (a database) stays on internal networks, with no way in or out", at, n)
				}
			}
			if len(s.Networks) == 0 {
				fail("%s.networks: none, so the stack's default network, which is not internal: put it on an internal: true network", at)
			}
		}
		if name == AppService || routed {
			errs = append(errs, checkResources(at, s)...)
		}
	}
	if declared && !bool(proxyNet.External) {
		fail("networks.%s: must be external: the proxy's network is made once per Swarm (deploy:proxy) and shared by the stacks behind it", ProxyNetwork)
	}
	return errs
}

// checkRouted holds a service Traefik routes to the labels that keep its
// updates invisible to clients.
func checkRouted(at string, s types.ServiceConfig, labels types.Labels, onProxy bool) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !onProxy {
		fail("%s.networks: routed by traefik labels but not on %s, where the proxy reaches it", at, ProxyNetwork)
	}
	if labels["traefik.swarm.network"] != ProxyNetwork {
		fail("%s.deploy.labels: traefik.swarm.network=%s missing: on several networks, Traefik must dial the task on its own", at, ProxyNetwork)
	}
	var ports, checks, hosts int
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		switch {
		case strings.HasSuffix(k, ".loadbalancer.server.port"):
			ports++
		case strings.HasSuffix(k, ".loadbalancer.healthcheck.path"):
			checks++
			if v != "/ready" {
				fail("%s.deploy.labels.%s: %q, want /ready: it turns 503 when a task is told to stop, so Traefik stops sending it requests at once", at, k, v)
			}
		case strings.HasPrefix(k, "traefik.http.routers.") && strings.HasSuffix(k, ".rule"):
			if strings.Contains(v, "Host(") {
				hosts++
			}
		case strings.HasPrefix(k, "traefik.http.routers.") && strings.HasSuffix(k, ".middlewares"):
			router := strings.TrimSuffix(strings.TrimPrefix(k, "traefik.http.routers."), ".middlewares")
			for _, m := range strings.Split(v, ",") {
				if retry := labels["traefik.http.middlewares."+strings.TrimSpace(m)+".retry.attempts"]; retry != "" && !readsOnly(labels["traefik.http.routers."+router+".rule"]) {
					fail("%s.deploy.labels: router %s retries (middleware %s) but its rule does not limit it to GET and HEAD: a retried POST could be applied twice", at, router, m)
				}
			}
		}
	}
	if ports == 0 {
		fail("%s.deploy.labels: no traefik.http.services.NAME.loadbalancer.server.port: the port the app listens on", at)
	}
	if checks == 0 {
		fail("%s.deploy.labels: no traefik.http.services.NAME.loadbalancer.healthcheck.path=/ready: without it a stopping task gets requests until the proxy's next poll", at)
	}
	if hosts == 0 {
		fail("%s.deploy.labels: no router with a Host(...) rule", at)
	}
	return errs
}

var ruleMethod = regexp.MustCompile("Method\\(`([A-Z]+)`\\)")

// readsOnly says whether a router rule admits only GET and HEAD requests.
func readsOnly(rule string) bool {
	methods := ruleMethod.FindAllStringSubmatch(rule, -1)
	if len(methods) == 0 || strings.Contains(rule, "!") {
		return false
	}
	for _, m := range methods {
		if m[1] != "GET" && m[1] != "HEAD" {
			return false
		}
	}
	return true
}

// checkResources requires CPU and memory limits and reservations: the
// limits are what deploy:top's percentages refer to, the reservations keep
// a node from taking more tasks than it can run.
func checkResources(at string, s types.ServiceConfig) []error {
	var errs []error
	var r types.Resources
	if s.Deploy != nil {
		r = s.Deploy.Resources
	}
	for _, c := range []struct {
		key string
		set bool
	}{
		{"limits.cpus", r.Limits != nil && r.Limits.NanoCPUs > 0},
		{"limits.memory", r.Limits != nil && r.Limits.MemoryBytes > 0},
		{"reservations.cpus", r.Reservations != nil && r.Reservations.NanoCPUs > 0},
		{"reservations.memory", r.Reservations != nil && r.Reservations.MemoryBytes > 0},
	} {
		if !c.set {
			errs = append(errs, fmt.Errorf("%s.deploy.resources.%s: missing; the scaling guide's percentages (deploy:top) refer to the limits, and reservations keep a node from taking more tasks than it can run", at, c.key))
		}
	}
	return errs
}

// sameImage says whether image is in the repository ours.
func sameImage(image, ours string) bool {
	ref, err := reference.ParseNormalizedNamed(image)
	return err == nil && ours != "" && sameRepository(ref, ours)
}

// pinned says whether image is fixed by the file. A digest always is. Our
// own image otherwise needs a release tag (release.IsReleaseTag, the one
// rule for a version): a branch (main), a commit (abc1234, abc1234-dirty) or a
// moving vX.Y tag is what the tag scheme gives builds that were never
// released. Another vendor's image needs a tag other than latest (what
// postgres:16-alpine means is the vendor's business).
func pinned(image, ours string) error {
	if image == "" {
		return errors.New("missing: a production service runs a released image")
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("%q: %w", image, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil
	}
	t, tagged := ref.(reference.Tagged)
	if ours != "" && sameRepository(ref, ours) {
		const instead = "deploy a release tag (vX.Y.Z, made by go tool mage release:*) or a digest"
		switch {
		case !tagged:
			return fmt.Errorf("%q has no tag, which means latest; %s", image, instead)
		case t.Tag() == "latest":
			return fmt.Errorf("%q: production never runs latest; %s", image, instead)
		}
		if !release.IsReleaseTag(t.Tag()) {
			return fmt.Errorf("%q: %q is not a release tag of this project's image (a branch, commit or vX.Y tag moves or was never released); %s", image, t.Tag(), instead)
		}
		return nil
	}
	switch {
	case !tagged:
		return fmt.Errorf("%q has no tag, which means latest; pin a version tag (postgres:16-alpine) or a digest", image)
	case t.Tag() == "latest":
		return fmt.Errorf("%q: production never runs latest; pin a version tag (postgres:16-alpine) or a digest", image)
	}
	return nil
}

// sameRepository says whether ref names the repository ours, both
// normalized (acme/api is docker.io/acme/api).
func sameRepository(ref reference.Named, ours string) bool {
	o, err := reference.ParseNormalizedNamed(ours)
	return err == nil && o.Name() == ref.Name()
}

// secretNames end the names of variables that hold secrets by convention.
// Whatever their value (a literal, or ${VAR} filled in from the deployer's
// shell), it lands in the service spec; their _FILE forms point at a
// secret and are fine.
var secretNames = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY", "DATABASE_URL", "_DSN"}

// urlWithPassword matches scheme://user:password@...; by hand, because
// url.Parse gives up on the many generated passwords that hold / ? or #.
var urlWithPassword = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*:[^@\s]+@`)

// secretLooking says whether the variable k (value v, nil when the file
// passes it through from the deployer's shell) carries a secret: by its
// name, or because v is a URL with a password in it.
func secretLooking(k string, v *string) bool {
	upper := strings.ToUpper(k)
	if strings.HasSuffix(upper, "_FILE") {
		return false
	}
	for _, s := range secretNames {
		if strings.HasSuffix(upper, s) {
			return true
		}
	}
	return v != nil && urlWithPassword.MatchString(*v)
}

// The committed files, relative to the repository root, and the stack
// they make.
const (
	LocalFile      = "docker-compose.yml"
	ProductionFile = "docker-compose.prod.yml"
	Name           = "service-template"
	// AppService is the production file's service that runs this
	// project's own image; its repository is the one CheckProduction
	// holds to release tags.
	AppService = "app"
)

// standInRelease is the IMAGE_TAG lint checks the production file with when
// the file needs one: lint checks the file, not a release.
const standInRelease = "v0.0.0"

// standInEnvironment is what lint gives the production file of an
// environment's settings (deploy/environments.yml has the real ones).
var standInEnvironment = map[string]string{"APP_HOST": "lint.example.com", "ROUTER": "lint"}

// Lint checks the committed files under dir: the local one loads, and the
// production one keeps the production rules. Unset, IMAGE_TAG must stop a
// deploy (${IMAGE_TAG:?...}) or fall back to something the rules accept,
// never latest; when it stops the load, the file is checked with a
// stand-in release tag instead. Our own repository is the one the file
// names for the app service under the stand-in tag, so it comes from the
// file's own defaults (${REGISTRY:-...}/${IMAGE_NAME:-...}).
func Lint(ctx context.Context, dir string) error {
	local, prod := filepath.Join(dir, LocalFile), filepath.Join(dir, ProductionFile)
	if _, err := Load(ctx, Name, nil, local); err != nil {
		return err
	}
	standIn, err := Load(ctx, Name, with(standInEnvironment, "IMAGE_TAG", standInRelease), prod)
	if err != nil {
		return err
	}
	ours, err := OwnRepository(standIn)
	if err != nil {
		return fmt.Errorf("%s: %w", prod, err)
	}
	p, err := Load(ctx, Name, standInEnvironment, prod)
	if err != nil && strings.Contains(err.Error(), "IMAGE_TAG") {
		p, err = standIn, nil
	}
	if err != nil {
		return err
	}
	if err := CheckProduction(p, ours); err != nil {
		return fmt.Errorf("%s:\n%w", prod, err)
	}
	return nil
}

func with(m map[string]string, k, v string) map[string]string {
	m = maps.Clone(m)
	m[k] = v
	return m
}

// OwnRepository is the repository of the app service's image in p
// (ghcr.io/acme/api): this project's own image.
func OwnRepository(p *types.Project) (string, error) {
	s, ok := p.Services[AppService]
	if !ok || s.Image == "" {
		return "", fmt.Errorf("services.%s.image: missing; the production file runs this project's image as %s", AppService, AppService)
	}
	ref, err := reference.ParseNormalizedNamed(s.Image)
	if err != nil {
		return "", fmt.Errorf("services.%s.image: %q: %w", AppService, s.Image, err)
	}
	return ref.Name(), nil
}
