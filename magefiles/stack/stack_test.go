package stack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// The committed files, as lint sees them.
const (
	localFile = "../../docker-compose.yml"
	prodFile  = "../../docker-compose.prod.yml"
)

func TestCommittedProductionFileKeepsTheRules(t *testing.T) {
	p, err := Load(context.Background(), "service-template", with(standInEnvironment, "IMAGE_TAG", "v1.2.3"), prodFile)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := OwnRepository(p)
	if err != nil || ours != "ghcr.io/fractionate/service-template" {
		t.Fatalf("OwnRepository = %q, %v", ours, err)
	}
	if err := CheckProduction(p, ours); err != nil {
		t.Errorf("docker-compose.prod.yml breaks the production rules:\n%v", err)
	}
	if got, want := p.Services["app"].Image, "ghcr.io/fractionate/service-template:v1.2.3"; got != want {
		t.Errorf("app image %q, want %q", got, want)
	}
}

func TestCommittedLocalFileLoads(t *testing.T) {
	p, err := Load(context.Background(), "service-template", nil, localFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"app", "migrate", "postgres", "redis"} {
		if _, ok := p.Services[s]; !ok {
			t.Errorf("docker-compose.yml has no %s service", s)
		}
	}
}

func TestProductionFileNeedsImageTag(t *testing.T) {
	_, err := Load(context.Background(), "service-template", standInEnvironment, prodFile)
	if err == nil || !strings.Contains(err.Error(), "IMAGE_TAG") {
		t.Fatalf("error %v, want one naming IMAGE_TAG", err)
	}
}

func TestProductionFileRefusesLatest(t *testing.T) {
	p, err := Load(context.Background(), "service-template", with(standInEnvironment, "IMAGE_TAG", "latest"), prodFile)
	if err != nil {
		t.Fatal(err)
	}
	err = CheckProduction(p, "ghcr.io/fractionate/service-template")
	if err == nil || !strings.Contains(err.Error(), "services.app.image") || !strings.Contains(err.Error(), "latest") {
		t.Fatalf("error %v, want services.app.image refused for latest", err)
	}
}

// A test override (dnsrr, where the routing mesh does not work) merged on
// top of the production file is caught.
func TestOverrideMergedOnProduction(t *testing.T) {
	override := write(t, `
services:
  app:
    deploy:
      endpoint_mode: dnsrr
`)
	p, err := Load(context.Background(), "service-template", with(standInEnvironment, "IMAGE_TAG", "v1.2.3"), prodFile, override)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckProduction(p, "ghcr.io/fractionate/service-template"); err == nil || !strings.Contains(err.Error(), "services.app.deploy.endpoint_mode") {
		t.Fatalf("error %v, want services.app.deploy.endpoint_mode", err)
	}
}

// rollsBack is the deploy section every production service needs; rows
// add it unless they test its absence.
const rollsBack = `
    deploy:
      update_config:
        failure_action: rollback
`

func TestCheckProduction(t *testing.T) {
	const canary = "hunter2canary"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error; none means no error
	}{
		{"release tag", `
services:
  app:
    image: ghcr.io/acme/api:v1.2.3` + rollsBack, nil, nil},
		{"digest, and a registry with a port", `
services:
  app:
    image: registry.local:5000/acme/api@sha256:` + strings.Repeat("a", 64) + rollsBack, nil, nil},
		{"untagged means latest", `
services:
  app:
    image: ghcr.io/acme/api` + rollsBack, nil, []string{"services.app.image", "no tag"}},
		{"latest", `
services:
  app:
    image: ghcr.io/acme/api:latest` + rollsBack, nil, []string{"services.app.image", "never runs latest"}},
		{"latest from a default", `
services:
  app:
    image: ghcr.io/acme/api:${IMAGE_TAG:-latest}` + rollsBack, nil, []string{"services.app.image", "never runs latest"}},
		{"health check disabled", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    healthcheck:
      disable: true` + rollsBack, nil, []string{"services.app.healthcheck"}},
		{"health check NONE", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    healthcheck:
      test: ["NONE"]` + rollsBack, nil, []string{"services.app.healthcheck"}},
		{"database URL with a password", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    environment:
      CACHE_URL: redis://:` + canary + `@redis:6379/0` + rollsBack, nil, []string{"services.app.environment.CACHE_URL", "CACHE_URL_FILE"}},
		{"a password with / in a URL", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    environment:
      CACHE_URL: redis://app:ab/` + canary + `@redis:6379/0` + rollsBack, nil, []string{"services.app.environment.CACHE_URL"}},
		{"password by name", `
services:
  db:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD: ` + canary + rollsBack, nil, []string{"services.db.environment.POSTGRES_PASSWORD"}},
		{"secret filled in from the deployer's shell", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    environment:
      JWT_SECRET: ${JWT_SECRET}
      DATABASE_URL: ${DATABASE_URL}` + rollsBack, map[string]string{"JWT_SECRET": canary}, []string{"services.app.environment.DATABASE_URL", "services.app.environment.JWT_SECRET"}},
		{"secret passed through by name", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    environment:
      - API_TOKEN` + rollsBack, nil, []string{"services.app.environment.API_TOKEN"}},
		{"secrets by file and URLs without passwords are fine", `
services:
  db:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password
      REDIS_URL: redis://redis:6379/0
      PUBLIC_URL: https://example.com/a:b@c` + rollsBack, nil, nil},
		{"dnsrr", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    deploy:
      endpoint_mode: dnsrr
      update_config:
        failure_action: rollback
`, nil, []string{"services.app.deploy.endpoint_mode", "dnsrr"}},
		{"no deploy section", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
`, nil, []string{"services.app.deploy.update_config.failure_action", "pause (the default)"}},
		{"one replica without rollback", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    deploy:
      replicas: 1
`, nil, []string{"services.app.deploy.update_config.failure_action", "pause (the default)"}},
		{"global with continue", `
services:
  agent:
    image: ghcr.io/acme/agent:v1
    deploy:
      mode: global
      update_config:
        failure_action: continue
`, nil, []string{"services.agent.deploy.update_config.failure_action", "continue, want rollback"}},
		{"service behind a profile", `
services:
  debug:
    image: ghcr.io/acme/debug:latest
    profiles: [debug]` + rollsBack, nil, []string{"services.debug.image"}},
		{"secret from a file", `
services:
  app:
    image: ghcr.io/acme/api:v1.0.0
    secrets: [database_url]` + rollsBack + `
secrets:
  database_url:
    file: ./database_url.txt
`, nil, []string{"secrets.database_url", "not external"}},
		{"our image on a branch tag", `
services:
  app:
    image: ghcr.io/acme/api:main` + rollsBack, nil, []string{"services.app.image", `"main" is not a release tag`, "deploy a release tag"}},
		{"our image on a dirty commit tag", `
services:
  app:
    image: ghcr.io/acme/api:abc1234-dirty` + rollsBack, nil, []string{"services.app.image", `"abc1234-dirty" is not a release tag`}},
		{"our image on a commit tag", `
services:
  app:
    image: ghcr.io/acme/api:abc1234` + rollsBack, nil, []string{"services.app.image", "not a release tag"}},
		{"our image on a moving minor tag", `
services:
  app:
    image: ghcr.io/acme/api:v1.2` + rollsBack, nil, []string{"services.app.image", `"v1.2" is not a release tag`}},
		{"our image on a branch that looks like a version", `
services:
  app:
    image: ghcr.io/acme/api:branch-v1.2.3` + rollsBack, nil, []string{"services.app.image", "not a release tag"}},
		{"our image on a loose version", `
services:
  app:
    image: ghcr.io/acme/api:v1.2.3.4` + rollsBack, nil, []string{"services.app.image", "not a release tag"}},
		{"our image under another service name", `
services:
  worker:
    image: ghcr.io/acme/api:feature-x` + rollsBack, nil, []string{"services.worker.image", "not a release tag"}},
		{"our image untagged", `
services:
  app:
    image: ghcr.io/acme/api` + rollsBack, nil, []string{"services.app.image", "no tag", "release tag"}},
		{"our image on a pre-release", `
services:
  app:
    image: ghcr.io/acme/api:v1.3.0-rc.1` + rollsBack, nil, nil},
		{"our image by digest with a branch tag", `
services:
  app:
    image: ghcr.io/acme/api:main@sha256:` + strings.Repeat("b", 64) + rollsBack, nil, nil},
		{"a vendor's own tags are fine", `
services:
  db:
    image: postgres:16-alpine` + rollsBack + `
  cache:
    image: docker.io/library/redis:7` + rollsBack + `
  proxy:
    image: ghcr.io/other/proxy:main` + rollsBack, nil, nil},
		{"a vendor's latest is not", `
services:
  db:
    image: docker.io/library/postgres:latest` + rollsBack, nil, []string{"services.db.image", "never runs latest", "pin a version tag"}},
		{"every fault at once, sorted", `
services:
  b:
    image: b:latest` + rollsBack + `
  a:
    image: a` + rollsBack, nil, []string{"services.a.image", "services.b.image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(context.Background(), "test", tt.env, write(t, tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			// The front's rules have a table of their own.
			err = errors.Join(checkServices(p, "ghcr.io/acme/api")...)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one with %q", tt.want)
			}
			msg := err.Error()
			last := -1
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
				if i < last {
					t.Errorf("%q comes too early in:\n%s", w, msg)
				}
				last = i
			}
			if strings.Contains(msg, canary) {
				t.Errorf("error quotes the secret:\n%s", msg)
			}
		})
	}
}

func TestLoadErrorNamesTheFile(t *testing.T) {
	f := write(t, "services:\n  app:\n    image: [not, a, string]\n")
	_, err := Load(context.Background(), "test", nil, f)
	if err == nil || !strings.Contains(err.Error(), f) {
		t.Fatalf("error %v, want one naming %s", err, f)
	}
}

func write(t *testing.T, yaml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "compose.yml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLint(t *testing.T) {
	ctx := context.Background()
	if err := Lint(ctx, "../.."); err != nil {
		t.Fatalf("the committed files: %v", err)
	}
	for _, tt := range []struct {
		name, prod string
		want       []string
	}{
		{"latest when IMAGE_TAG is unset", "services:\n  app:\n    image: ghcr.io/acme/api:${IMAGE_TAG:-latest}" + rollsBack, []string{"services.app.image", "latest"}},
		{"a fault besides the required IMAGE_TAG", "services:\n  app:\n    image: ghcr.io/acme/api:${IMAGE_TAG:?set it}\n", []string{"services.app.deploy.update_config.failure_action"}},
		{"a load error", "services:\n  app:\n    image: [not, a, string]\n", []string{"services.app.image"}},
		{"a branch tag when IMAGE_TAG is unset", "services:\n  app:\n    image: ghcr.io/acme/api:${IMAGE_TAG:-main}" + rollsBack, []string{"services.app.image", `"main" is not a release tag`}},
		{"our repository from the file's defaults", "services:\n  app:\n    image: ${REGISTRY:-ghcr.io}/${IMAGE_NAME:-acme/api}:${IMAGE_TAG:?set it}" + rollsBack +
			"  sidecar:\n    image: ghcr.io/acme/api:main" + rollsBack, []string{"services.sidecar.image", "not a release tag"}},
		{"no app service", "services:\n  web:\n    image: ghcr.io/acme/api:v1.0.0" + rollsBack, []string{"services.app.image: missing"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for f, s := range map[string]string{LocalFile: "services:\n  app:\n    image: x\n", ProductionFile: tt.prod} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Lint(ctx, dir)
			if err == nil {
				t.Fatalf("no error, want one with %q", tt.want)
			}
			for _, w := range append([]string{ProductionFile}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// compose-go warns that `version` is obsolete; the production file keeps it
// on purpose (older docker stack deploy needs it), so Load keeps that quiet.
func TestLoadIgnoresVersionQuietly(t *testing.T) {
	var logged bytes.Buffer
	logrus.SetOutput(&logged)
	t.Cleanup(func() { logrus.SetOutput(os.Stderr) })
	f := write(t, "version: \"3.9\"\nservices:\n  app:\n    image: ghcr.io/acme/api:v1\n")
	if _, err := Load(context.Background(), "test", nil, f); err != nil {
		t.Fatal(err)
	}
	if logged.Len() > 0 {
		t.Errorf("Load logged:\n%s", logged.String())
	}
	// Only a 3.x line goes, and no line with it.
	for in, want := range map[string]string{
		"version: \"3.9\" # why\n\nservices: {}\n": "\n\nservices: {}\n",
		"version: \"3.9\"\n\nservices: {}\n":       "\n\nservices: {}\n",
		"version: '3'\nservices: {}\n":             "\nservices: {}\n",
		"version: \"2.4\"\nservices: {}\n":         "version: \"2.4\"\nservices: {}\n",
	} {
		if got := string(topLevelVersion.ReplaceAll([]byte(in), nil)); got != want {
			t.Errorf("blanking the version of %q gave %q, want %q", in, got, want)
		}
	}
}

// front is a stack the front's rules accept: the app routed by the proxy
// on its network, the database on an internal one.
const front = `
services:
  app:
    image: ghcr.io/acme/api:v1.2.3
    networks: [traefik-public, internal]
    deploy:
      labels:
        - traefik.enable=true
        - traefik.swarm.network=traefik-public
        - traefik.http.services.api.loadbalancer.server.port=8080
        - traefik.http.services.api.loadbalancer.healthcheck.path=/ready
        - traefik.http.routers.api.rule=Host(` + "`api.example.com`" + `)
        - traefik.http.routers.api-read.rule=Host(` + "`api.example.com`" + `) && (Method(` + "`GET`" + `) || Method(` + "`HEAD`" + `))
        - traefik.http.routers.api-read.middlewares=api-retry
        - traefik.http.middlewares.api-retry.retry.attempts=3
      resources:
        limits: {cpus: "1", memory: 256M}
        reservations: {cpus: "0.25", memory: 64M}
  db:
    image: postgres:16-alpine
    networks: [internal]
networks:
  traefik-public:
    external: true
  internal:
    driver: overlay
    internal: true
`

func TestCheckFront(t *testing.T) {
	tests := []struct {
		name string
		old  string // replaced in front by new
		new  string
		want []string // substrings of the errors; none means no error
	}{
		{name: "the standard's stack"},
		{name: "a published port", old: "    networks: [traefik-public, internal]\n", new: "    networks: [traefik-public, internal]\n    ports: [\"8080:8080\"]\n",
			want: []string{"services.app.ports: published"}},
		{name: "not routed", old: "        - traefik.enable=true\n", new: "",
			want: []string{"services.app.deploy.labels: traefik.enable=true missing", "services.app.networks: on traefik-public without traefik.enable=true"}},
		{name: "not on the proxy's network", old: "networks: [traefik-public, internal]", new: "networks: [internal]",
			want: []string{"services.app.networks: routed by traefik labels but not on traefik-public"}},
		{name: "the proxy's network made by the stack", old: "    external: true\n", new: "    driver: overlay\n",
			want: []string{"networks.traefik-public: must be external"}},
		{name: "no swarm network label", old: "        - traefik.swarm.network=traefik-public\n", new: "",
			want: []string{"traefik.swarm.network=traefik-public missing"}},
		{name: "health check elsewhere", old: "healthcheck.path=/ready", new: "healthcheck.path=/health",
			want: []string{`loadbalancer.healthcheck.path: "/health", want /ready`}},
		{name: "no health check", old: "        - traefik.http.services.api.loadbalancer.healthcheck.path=/ready\n", new: "",
			want: []string{"no traefik.http.services.NAME.loadbalancer.healthcheck.path=/ready"}},
		{name: "no port", old: "        - traefik.http.services.api.loadbalancer.server.port=8080\n", new: "",
			want: []string{"no traefik.http.services.NAME.loadbalancer.server.port"}},
		{name: "retries on every method", old: "traefik.http.routers.api-read.middlewares", new: "traefik.http.routers.api.middlewares",
			want: []string{"router api retries (middleware api-retry) but its rule does not limit it to GET and HEAD"}},
		{name: "retries on POST", old: "Method(`HEAD`)", new: "Method(`POST`)",
			want: []string{"router api-read retries"}},
		{name: "no limits", old: "        limits: {cpus: \"1\", memory: 256M}\n", new: "",
			want: []string{"services.app.deploy.resources.limits.cpus: missing", "services.app.deploy.resources.limits.memory: missing"}},
		{name: "no reserved memory", old: "reservations: {cpus: \"0.25\", memory: 64M}", new: "reservations: {cpus: \"0.25\"}",
			want: []string{"services.app.deploy.resources.reservations.memory: missing"}},
		{name: "the database on a network that is not internal", old: "    internal: true\n", new: "",
			want: []string{"services.db.networks: internal is not internal: true"}},
		{name: "the database publishing", old: "    networks: [internal]\n", new: "    networks: [internal]\n    ports: [\"5432:5432\"]\n",
			want: []string{"services.db.ports: published"}},
		{name: "the database on the proxy's network", old: "    networks: [internal]\n", new: "    networks: [internal, traefik-public]\n",
			want: []string{"services.db.networks: on traefik-public without traefik.enable=true", "services.db.networks: traefik-public is not internal"}},
		{name: "a worker of ours on the internal network", old: "  db:\n", new: "  worker:\n    image: ghcr.io/acme/api:v1.2.3\n    networks: [internal]\n  db:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := front
			if tt.old != "" {
				if !strings.Contains(yaml, tt.old) {
					t.Fatalf("the base stack has no %q", tt.old)
				}
				yaml = strings.Replace(yaml, tt.old, tt.new, 1)
			}
			p, err := Load(context.Background(), "test", nil, write(t, yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = errors.Join(checkFront(p, "ghcr.io/acme/api")...)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
