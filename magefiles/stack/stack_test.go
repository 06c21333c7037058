package stack

import (
	"bytes"
	"context"
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
	p, err := Load(context.Background(), "service-template", map[string]string{"IMAGE_TAG": "v1.2.3"}, prodFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckProduction(p); err != nil {
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
	_, err := Load(context.Background(), "service-template", nil, prodFile)
	if err == nil || !strings.Contains(err.Error(), "IMAGE_TAG") {
		t.Fatalf("error %v, want one naming IMAGE_TAG", err)
	}
}

func TestProductionFileRefusesLatest(t *testing.T) {
	p, err := Load(context.Background(), "service-template", map[string]string{"IMAGE_TAG": "latest"}, prodFile)
	if err != nil {
		t.Fatal(err)
	}
	err = CheckProduction(p)
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
	p, err := Load(context.Background(), "service-template", map[string]string{"IMAGE_TAG": "v1.2.3"}, prodFile, override)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckProduction(p); err == nil || !strings.Contains(err.Error(), "services.app.deploy.endpoint_mode") {
		t.Fatalf("error %v, want services.app.deploy.endpoint_mode", err)
	}
}

func TestCheckProduction(t *testing.T) {
	const canary = "hunter2canary"
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none means no error
	}{
		{"release tag", `
services:
  app:
    image: ghcr.io/acme/api:v1.2.3
`, nil},
		{"digest", `
services:
  app:
    image: ghcr.io/acme/api@sha256:` + strings.Repeat("a", 64) + `
`, nil},
		{"untagged means latest", `
services:
  app:
    image: ghcr.io/acme/api
`, []string{"services.app.image", "no tag"}},
		{"latest", `
services:
  app:
    image: ghcr.io/acme/api:latest
`, []string{"services.app.image", "never runs latest"}},
		{"health check disabled", `
services:
  app:
    image: ghcr.io/acme/api:v1
    healthcheck:
      disable: true
`, []string{"services.app.healthcheck"}},
		{"database URL with a password", `
services:
  app:
    image: ghcr.io/acme/api:v1
    environment:
      DATABASE_URL: postgres://app:` + canary + `@db/app
`, []string{"services.app.environment.DATABASE_URL", "DATABASE_URL_FILE"}},
		{"password by name", `
services:
  db:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD: ` + canary + `
`, []string{"services.db.environment.POSTGRES_PASSWORD"}},
		{"secrets by file and URLs without passwords are fine", `
services:
  db:
    image: postgres:16-alpine
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password
      REDIS_URL: redis://redis:6379/0
      PUBLIC_URL: https://example.com/
`, nil},
		{"dnsrr", `
services:
  app:
    image: ghcr.io/acme/api:v1
    deploy:
      endpoint_mode: dnsrr
`, []string{"services.app.deploy.endpoint_mode", "dnsrr"}},
		{"replicated without rollback", `
services:
  app:
    image: ghcr.io/acme/api:v1
    deploy:
      replicas: 2
`, []string{"services.app.deploy.update_config.failure_action", "pause (the default)"}},
		{"replicated with continue", `
services:
  app:
    image: ghcr.io/acme/api:v1
    deploy:
      replicas: 3
      update_config:
        failure_action: continue
`, []string{"services.app.deploy.update_config.failure_action", "continue, want rollback"}},
		{"replicated with rollback", `
services:
  app:
    image: ghcr.io/acme/api:v1
    deploy:
      replicas: 2
      update_config:
        failure_action: rollback
`, nil},
		{"secret from a file", `
services:
  app:
    image: ghcr.io/acme/api:v1
    secrets: [database_url]
secrets:
  database_url:
    file: ./database_url.txt
`, []string{"secrets.database_url", "not external"}},
		{"every fault at once, sorted", `
services:
  b:
    image: b:latest
  a:
    image: a
`, []string{"services.a.image", "services.b.image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(context.Background(), "test", nil, write(t, tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckProduction(p)
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
	if err := Lint(ctx, "service-template", localFile, prodFile); err != nil {
		t.Fatalf("the committed files: %v", err)
	}
	bad := write(t, "services:\n  app:\n    image: ghcr.io/acme/api:${IMAGE_TAG:-latest}\n")
	err := Lint(ctx, "service-template", localFile, bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "services.app.image") {
		t.Fatalf("error %v, want one naming %s and services.app.image", err, bad)
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
}
