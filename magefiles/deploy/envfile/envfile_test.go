package envfile

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEnvironments(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "stack.yml"), []byte("version: \"3.9\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const good = `
environments:
  staging:
    endpoint: ssh://deploy@staging.example.com
    stack: svc-staging
    image: ghcr.io/acme/svc
    files: [stack.yml]
    app_env: staging
  production:
    stack: svc
    image: ghcr.io/acme/svc
    files: [stack.yml]
    app_env: production
    protected: true
    promote_from: staging
    verify: {key: "-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----"}
    deadline: 15m
    history: 40
    max_replicas: 8
`
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none means it loads
		hide string   // must not be in the error
	}{
		{name: "good", yaml: good},
		{name: "misspelt key", yaml: strings.Replace(good, "app_env: staging", "app_evn: staging", 1),
			want: []string{"envs.yml", "line 8", "app_evn"}},
		{name: "no environments", yaml: "environments: {}\n", want: []string{"no environments"}},
		{name: "bad name", yaml: strings.Replace(good, "  staging:\n", "  Staging_1:\n", 1),
			want: []string{"environments.Staging_1", "lower-case"}},
		{name: "shared stack", yaml: strings.Replace(good, "stack: svc-staging", "stack: svc", 1),
			want: []string{"environments.staging.stack", `"svc" is also environment production's stack`}},
		{name: "image with a tag", yaml: strings.Replace(good, "image: ghcr.io/acme/svc\n    files: [stack.yml]\n    app_env: staging", "image: ghcr.io/acme/svc:latest\n    files: [stack.yml]\n    app_env: staging", 1),
			want: []string{"environments.staging.image", "without tag"}},
		{name: "missing stack file", yaml: strings.Replace(good, "files: [stack.yml]\n    app_env: staging", "files: [nope.yml]\n    app_env: staging", 1),
			want: []string{"environments.staging.files[0]", "nope.yml"}},
		{name: "unknown app_env", yaml: strings.Replace(good, "app_env: production", "app_env: prod", 1),
			want: []string{"environments.production.app_env", `"prod"`}},
		{name: "endpoint scheme", yaml: strings.Replace(good, "ssh://deploy@", "http://deploy@", 1),
			want: []string{"environments.staging.endpoint", "unix://, tcp:// or ssh://"}},
		{name: "short deadline", yaml: strings.Replace(good, "deadline: 15m", "deadline: 2s", 1),
			want: []string{"environments.production.deadline", "too short"}},
		{name: "protected without promote_from", yaml: strings.Replace(good, "    promote_from: staging\n", "", 1),
			want: []string{"environments.production.promote_from"}},
		{name: "several managers", yaml: strings.Replace(good, "endpoint: ssh://deploy@staging.example.com", "endpoints: [ssh://deploy@m1.example.com, ssh://deploy@m2.example.com]", 1)},
		{name: "endpoint and endpoints", yaml: strings.Replace(good, "endpoint: ssh://deploy@staging.example.com", "endpoint: ssh://a\n    endpoints: [ssh://b]", 1),
			want: []string{"environments.staging.endpoints: set endpoint or endpoints, not both"}},
		{name: "a bad one of several", yaml: strings.Replace(good, "endpoint: ssh://deploy@staging.example.com", "endpoints: [ssh://a, http://b]", 1),
			want: []string{"environments.staging.endpoints[1]", "unix://, tcp:// or ssh://"}},
		{name: "a protected environment without a key", yaml: strings.Replace(good, "    verify: {key:", "    x_verify: {key:", 1),
			want: []string{"field x_verify not found"}},
		{name: "a verify key that is no file", yaml: strings.Replace(good, `verify: {key: "-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----"}`, "verify: {key: deploy/nope.pub}", 1),
			want: []string{"environments.production.verify.key", "nope.pub"}},
		{name: "protected, no verify", yaml: strings.Replace(good, `    verify: {key: "-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----"}`+"\n", "", 1),
			want: []string{"environments.production.verify: a protected environment runs only images signed"}},
		{name: "plain tcp where it is allowed", yaml: strings.Replace(good, "endpoint: ssh://deploy@staging.example.com", "endpoint: tcp://10.0.0.2:2375\n    insecure_tcp: true", 1)},
		{name: "plain tcp to production", yaml: good + "    insecure_tcp: true\n",
			want: []string{"environments.production.insecure_tcp", "always uses TLS"}},
		{name: "promote_from itself", yaml: strings.Replace(good, "promote_from: staging", "promote_from: production", 1),
			want: []string{"environments.production.promote_from", `"production" is not another environment`}},
		{name: "variables the deploy sets", yaml: good + "    variables:\n      IMAGE_TAG: v1\n",
			want: []string{"environments.production.variables.IMAGE_TAG", "set by the deploy"}},
		{name: "a protected environment's registry", yaml: good + "    registry: {port: 5000}\n",
			want: []string{"environments.production.protected", "deploy:init"}},
		{name: "smoke by URL", yaml: good + "    smoke: {url: https://svc.example.com/}\n"},
		{name: "smoke by service", yaml: good + "    smoke: {service: app, port: 9090, path: /api/, timeout: 1m}\n"},
		{name: "smoke with both", yaml: good + "    smoke: {url: https://svc.example.com/, service: app}\n",
			want: []string{"environments.production.smoke.url: give url or service, not both"}},
		{name: "smoke with neither", yaml: good + "    smoke: {timeout: 10s}\n",
			want: []string{"environments.production.smoke.url: give url"}},
		{name: "smoke URL with credentials", yaml: good + "    smoke: {url: \"https://u:p@svc.example.com/\"}\n",
			want: []string{"environments.production.smoke.url: no credentials"}},
		{name: "smoke URL not http", yaml: good + "    smoke: {url: ftp://svc.example.com/}\n",
			want: []string{"environments.production.smoke.url", "http:// or https://"}},
		{name: "smoke URL with a path key", yaml: good + "    smoke: {url: https://svc.example.com/, path: /x/}\n",
			want: []string{"environments.production.smoke.url: port and path go with service"}},
		{name: "smoke bad port and path", yaml: good + "    smoke: {service: app, port: 70000, path: api}\n",
			want: []string{"environments.production.smoke.port: 70000", `environments.production.smoke.path: "api"`}},
		{name: "smoke timeout", yaml: good + "    smoke: {service: app, timeout: 1h}\n",
			want: []string{"environments.production.smoke.timeout: 1h0m0s"}},
		{name: "init_secrets", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    init_secrets: {postgres-password: \"{{random}}\", database_url: \"postgres://app:{{postgres-password}}@db/app\"}\n", 1)},
		{name: "init_secrets with spaces", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    init_secrets: {pw: \"{{ random }}\"}\n", 1),
			want: []string{"envs.yml: environments.staging.init_secrets.pw: {{ random }} is neither {{random}} nor {{name}} of another init secret"}},
		{name: "init_secrets in capitals", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    init_secrets: {pw: \"{{RANDOM}}\"}\n", 1),
			want: []string{"environments.staging.init_secrets.pw: {{RANDOM}} is neither"}},
		{name: "init_secrets with an unknown name", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    init_secrets: {postgres_password: \"{{random}}\", url: \"x:{{postgres-password}}\"}\n", 1),
			want: []string{"environments.staging.init_secrets.url: {{postgres-password}} is neither {{random}} nor {{name}} of another init secret (postgres_password)"}},
		{name: "init_secrets with a stray brace", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    init_secrets: {pw: \"{{random}\", url: \"{random}}\"}\n", 1),
			want: []string{"environments.staging.init_secrets.pw: a {{ or }} that is not part of", "environments.staging.init_secrets.url: a {{ or }}"}},
		{name: "init_secrets in a loop", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    init_secrets: {a: \"{{b}}\", b: \"{{a}}\"}\n", 1),
			want: []string{"environments.staging.init_secrets.a refers to itself through a -> b -> a"}},
		{name: "proxy", yaml: good + "    proxy: {email: ops@example.com, node: manager-1, https_port: 8443}\n"},
		{name: "proxy with pebble where it is allowed", yaml: strings.Replace(good, "    app_env: staging\n", "    app_env: staging\n    proxy: {ca: pebble}\n", 1)},
		{name: "proxy with pebble in production", yaml: good + "    proxy: {ca: pebble}\n",
			want: []string{"environments.production.proxy.ca: pebble is a test CA"}},
		{name: "proxy without email", yaml: good + "    proxy: {ca: letsencrypt-staging}\n",
			want: []string{"environments.production.proxy.email: the ACME account's contact is required"}},
		{name: "proxy with a bad CA", yaml: good + "    proxy: {ca: \"http://ca.example/dir\", email: a@b.c}\n",
			want: []string{"environments.production.proxy.ca: \"http://ca.example/dir\""}},
		{name: "proxy with a CA URL", yaml: good + "    proxy: {ca: \"https://ca.example/dir\", email: a@b.c}\n"},
		{name: "proxy ports", yaml: good + "    proxy: {email: a@b.c, http_port: 443}\n",
			want: []string{"environments.production.proxy.https_port: 443 is http_port too"}},
		{name: "proxy on an environment's stack", yaml: good + "    proxy: {email: a@b.c, stack: svc-staging}\n",
			want: []string{"environments.production.proxy.stack: \"svc-staging\" is environment staging's stack"}},
		{name: "proxy variables it sets", yaml: good + "    proxy: {email: a@b.c, variables: {ACME_EMAIL: x@y.z}}\n",
			want: []string{"environments.production.proxy.variables.ACME_EMAIL: set by deploy:proxy"}},
		{name: "proxy with certificates from secrets", yaml: good + "    proxy: {ca: secrets}\n"},
		{name: "proxy with secrets and an email", yaml: good + "    proxy: {ca: secrets, email: a@b.c, node: manager-1}\n",
			want: []string{"environments.production.proxy.email: ca: secrets orders no certificate", "environments.production.proxy.node: ca: secrets keeps no certificate on a node"}},
		{name: "proxy with a misspelt secrets", yaml: good + "    proxy: {ca: secret}\n",
			want: []string{"environments.production.proxy.ca: \"secret\": want letsencrypt, letsencrypt-staging, pebble, an ACME directory's https:// URL (without credentials), or secrets"}},
		{name: "proxy misspelt key", yaml: good + "    proxy: {emial: a@b.c}\n",
			want: []string{"field emial not found"}},
		{name: "notify", yaml: good + "    notify: {url_env: DEPLOY_WEBHOOK_URL, timeout: 2s}\n"},
		{name: "notify with the URL itself", yaml: good + "    notify: {url_env: \"https://hooks.example.com/T0K3N\"}\n",
			want: []string{"environments.production.notify.url_env", "never the URL itself"}, hide: "T0K3N"},
		{name: "notify with a url key", yaml: good + "    notify: {url: https://hooks.example.com/x}\n",
			want: []string{"field url not found"}},
		{name: "notify timeout", yaml: good + "    notify: {url_env: HOOK, timeout: 1m}\n",
			want: []string{"environments.production.notify.timeout: 1m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envs, err := Parse(strings.NewReader(tt.yaml), "envs.yml", root)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded %v, want an error", envs.Names())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.hide != "" && strings.Contains(err.Error(), tt.hide) {
				t.Errorf("error %q shows %q", err, tt.hide)
			}
		})
	}

	envs, err := Parse(strings.NewReader(good), "envs.yml", root)
	if err != nil {
		t.Fatal(err)
	}
	s := envs["staging"]
	if s.Deadline != DefaultDeadline || s.History != DefaultHistory || s.MaxReplicas != DefaultMaxReplicas {
		t.Errorf("staging's defaults: deadline %s history %d max_replicas %d", s.Deadline, s.History, s.MaxReplicas)
	}
	if s.Files[0] != filepath.Join(root, "stack.yml") {
		t.Errorf("files are not resolved against the root: %v", s.Files)
	}
	if p := envs["production"]; p.Deadline != 15*time.Minute || p.History != 40 || !p.Protected {
		t.Errorf("production: %+v", p)
	}
	withSmoke, err := Parse(strings.NewReader(good+"    smoke: {service: app}\n    notify: {url_env: HOOK}\n"), "envs.yml", root)
	if err != nil {
		t.Fatal(err)
	}
	if sm, n := withSmoke["production"].Smoke, withSmoke["production"].Notify; sm.Port != 8080 || sm.Path != "/" || sm.Timeout != DefaultSmokeTimeout || n.Timeout != DefaultNotifyTimeout {
		t.Errorf("smoke and notify defaults: %+v %+v", sm, n)
	}
	withProxy, err := Parse(strings.NewReader(good+"    proxy: {email: a@b.c}\n"), "envs.yml", root)
	if err != nil {
		t.Fatal(err)
	}
	if p := withProxy["production"].Proxy; p.Stack != "proxy" || p.CA != CALetsEncrypt || p.HTTPPort != 80 || p.HTTPSPort != 443 || p.ACMEDirectory() != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("proxy defaults: %+v", p)
	}
	if _, err := envs.Get("prod"); err == nil || !strings.Contains(err.Error(), "known: production, staging") {
		t.Errorf("Get(prod) = %v, want an error listing the known environments", err)
	}
}

// The committed file loads: mage lint checks it the same way.
func TestCommittedEnvironments(t *testing.T) {
	envs, err := Load("../../../"+DefaultPath, "../../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"local", "staging", "production"} {
		if _, err := envs.Get(name); err != nil {
			t.Error(err)
		}
	}
	if !envs.Environments["production"].Protected {
		t.Error("production is not protected")
	}
}

// A change may hold the lock through four waits of a deadline, the
// migration status job and the smoke check: deploy:unlock must not call a
// lock that old abandoned.
func TestMaxHold(t *testing.T) {
	e := &Environment{Deadline: 5 * time.Minute}
	if got, want := e.MaxHold(), 24*time.Minute; got != want {
		t.Errorf("without smoke: %s, want %s", got, want)
	}
	e.Smoke = &Smoke{Timeout: 30 * time.Second}
	if got, want := e.MaxHold(), 25*time.Minute+30*time.Second; got != want {
		t.Errorf("with smoke: %s, want %s", got, want)
	}
}

func TestLoadRecordsTheFile(t *testing.T) {
	f, err := Load("../../../"+DefaultPath, "../../..")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../../" + DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if f.SHA256 != hex.EncodeToString(sum[:]) || f.Path != "../../../"+DefaultPath {
		t.Errorf("File{Path: %q, SHA256: %q}", f.Path, f.SHA256)
	}
}

func TestSmokeURLs(t *testing.T) {
	tests := []struct {
		smoke          Smoke
		ready, version string
	}{
		{Smoke{URL: "https://svc.example.com"}, "https://svc.example.com/ready", "https://svc.example.com/version"},
		{Smoke{URL: "https://svc.example.com/api/"}, "https://svc.example.com/api/ready", "https://svc.example.com/api/version"},
		{Smoke{Service: "app", Port: 8080, Path: "/"}, "http://tasks.app:8080/ready", "http://tasks.app:8080/version"},
		{Smoke{Service: "web", Port: 9000, Path: "/api"}, "http://tasks.web:9000/api/ready", "http://tasks.web:9000/api/version"},
	}
	for _, tt := range tests {
		if r, v := tt.smoke.URLs(); r != tt.ready || v != tt.version {
			t.Errorf("%+v: %s %s, want %s %s", tt.smoke, r, v, tt.ready, tt.version)
		}
	}
}
