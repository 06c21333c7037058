package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

func TestLintCommittedEnvironments(t *testing.T) {
	if err := Lint(t.Context(), "../.."); err != nil {
		t.Fatal(err)
	}
}

// A protected environment whose files break the production rules fails
// lint, naming the environment and the key.
func TestLintRefusesAProtectedEnvironmentBreakingTheRules(t *testing.T) {
	root := t.TempDir()
	prod, err := os.ReadFile("../../docker-compose.prod.yml")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "deploy"), 0o755))
	must(os.WriteFile(filepath.Join(root, "docker-compose.prod.yml"), prod, 0o644))
	must(os.WriteFile(filepath.Join(root, "dnsrr.yml"), []byte("version: \"3.9\"\nservices:\n  postgres:\n    deploy:\n      endpoint_mode: dnsrr\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, envfile.DefaultPath), []byte(`environments:
  staging:
    stack: s
    image: ghcr.io/acme/svc
    files: [docker-compose.prod.yml, dnsrr.yml]
    app_env: staging
    variables: {APP_HOST: s.example.com, ROUTER: s}
  production:
    stack: p
    image: ghcr.io/acme/svc
    files: [docker-compose.prod.yml, dnsrr.yml]
    app_env: production
    variables: {APP_HOST: p.example.com, ROUTER: p}
    protected: true
    promote_from: staging
    verify: {key: "-----BEGIN PUBLIC KEY-----"}
`), 0o644))
	err = Lint(t.Context(), root)
	if err == nil {
		t.Fatal("lint passed a protected environment with endpoint_mode: dnsrr")
	}
	for _, want := range []string{"environment production", "services.postgres.deploy.endpoint_mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "environment staging") {
		t.Errorf("an unprotected environment was held to the production rules: %v", err)
	}
}
