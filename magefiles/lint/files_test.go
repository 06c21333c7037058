package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/dockerimage"
)

// TestFilesCatchBrokenFiles runs the file checks of mage lint on a copy of
// this repository, as it is and with one deliberately broken file put in,
// and wants each broken file caught with its name and the line or key at
// fault, and nothing else reported.
func TestFilesCatchBrokenFiles(t *testing.T) {
	tests := []struct {
		name    string
		fixture string // in testdata/; "" for the repository as it is
		dest    string // where the fixture goes in the copy
		want    []string
	}{
		{name: "repository as it is"},
		{
			name: "workflow", fixture: "broken-workflow.yml", dest: ".github/workflows/broken.yml",
			want: []string{
				"workflows:",
				`.github/workflows/broken.yml:12: jobs.build: run "go tool mage release:pre ${{ github.event.head_commit.message }}" has a ${{ }} expression`,
				`.github/workflows/broken.yml:17: jobs.deploy: run "go tool mage deploy:staging -image=${{ needs.build.outputs.image }}" has a ${{ }} expression`,
				`.github/workflows/broken.yml:18: jobs.deploy: run "go tool mage lint | tee lint.log" is more than one mage call`,
				`.github/workflows/broken.yml:12:43: "github.event.head_commit.message" is potentially untrusted`,
				`.github/workflows/broken.yml:13:3: job "deploy" needs job "biuld" which does not exist`,
				`.github/workflows/broken.yml:17:53: property "build" is not defined`,
			},
		},
		{
			name: "production compose file", fixture: "broken-compose.prod.yml", dest: "docker-compose.prod.yml",
			want: []string{
				"docker-compose.prod.yml:",
				`services.app.image: "ghcr.io/fractionate/service-template:latest": production never runs latest`,
				"services.app.environment.DATABASE_URL: a secret in the service's environment",
				"services.app.deploy.update_config.failure_action: pause (the default), want rollback",
				"secrets.database_url: not external",
			},
		},
		{
			name: "local compose file", fixture: "broken-compose.yml", dest: "docker-compose.yml",
			want: []string{`docker-compose.yml: service "app" depends on undefined service "postgres"`},
		},
		{
			name: "Dockerfile", fixture: "broken.Dockerfile", dest: "Dockerfile",
			want: []string{
				"Dockerfile:1: FROM golang:latest: latest changes under you",
				"Dockerfile:4: final stage (unnamed) sets no USER",
				"Dockerfile:6: ENV API_TOKEN: looks like a secret",
				"Dockerfile:7: HEALTHCHECK in shell form",
			},
		},
		{
			name: "OpenAPI document", fixture: "broken-openapi.yaml", dest: OpenAPIPath,
			want: []string{"app/internal/httpapi/openapi.yaml:6: invalid paths: operation GET /v1/notes/{id} must define exactly all path parameters"},
		},
		{
			name: "config file", fixture: "broken-production.json", dest: "config/production.json",
			want: []string{
				"config/production.json: the service refuses it (APP_ENV=production app config)",
				`config/production.json: unknown key "htp.port"`,
				`config/production.json: key "database.url" is a secret and must not be in a committed file`,
				`log.level (from config/production.json)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := dockerimage.CopyRepo(t.Context(), filepath.Join("..", ".."), dir); err != nil {
				t.Fatal(err)
			}
			if tt.fixture != "" {
				b, err := os.ReadFile(filepath.Join("testdata", tt.fixture))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(tt.dest)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Files(t.Context(), dir)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want no problems, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("the broken file passed")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the problems do not mention %q:\n%s", w, msg)
				}
			}
			for _, other := range []string{"Dockerfile:", "openapi.yaml:", "config/", "docker-compose", "ci.yml:"} {
				if !strings.Contains(strings.Join(tt.want, "\n"), other) && strings.Contains(msg, other) {
					t.Errorf("a file that was not broken is reported (%s):\n%s", other, msg)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("a secret value is quoted:\n%s", msg)
			}
		})
	}
}
