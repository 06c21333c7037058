package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	configfiles "github.com/fractionate/service-template/config"
	"github.com/fractionate/service-template/internal/secret"
)

// testSources returns sources with nothing set: an empty environment, the
// given JSON files, and .env and secrets locations inside a temp dir that
// tests may fill.
func testSources(t *testing.T, files fstest.MapFS) (Sources, string) {
	t.Helper()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if files == nil {
		files = fstest.MapFS{}
	}
	for _, env := range Environments {
		if _, ok := files[env+".json"]; !ok {
			files[env+".json"] = &fstest.MapFile{Data: []byte("{}")}
		}
	}
	return Sources{
		Environ:       map[string]string{},
		Files:         files,
		DotEnv:        filepath.Join(dir, ".env"),
		DotEnvDefault: true, // most tests write no .env
		SecretsDir:    secrets,
	}, dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func entry(t *testing.T, cfg *Config, key string) Entry {
	t.Helper()
	for _, e := range cfg.Entries() {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no entry %q", key)
	return Entry{}
}

func TestDefaults(t *testing.T) {
	src, _ := testSources(t, nil)
	cfg, _, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Env != Development || cfg.HTTP.Port != 8080 || cfg.Readiness.Timeout != time.Second || cfg.Database.QueryTimeout != 3*time.Second ||
		cfg.Log.Format != "json" || cfg.Database.URL.IsSet() || cfg.Redis.URL.IsSet() {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
	if e := entry(t, cfg, "http.port"); e.Source != "default" || e.Value != "8080" {
		t.Fatalf("http.port entry = %+v", e)
	}
	if e := entry(t, cfg, "app_env"); e.Source != "default" || e.Value != Development {
		t.Fatalf("app_env entry = %+v", e)
	}
	if err := cfg.RequireDatabase(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("RequireDatabase() = %v, want an error naming DATABASE_URL", err)
	}
}

// TestPrecedence sets http.port in every layer up to a given one and checks
// that the highest layer wins and is named as the source.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		name       string
		upTo       int // highest layer set: 1 json, 2 .env, 3 env, 4 secrets dir, 5 _FILE
		env        string
		wantPort   int
		wantSource string
	}{
		{"json beats default", 1, Development, 1001, "config/development.json"},
		{".env beats json", 2, Development, 1002, "/.env"},
		{"env beats .env", 3, Development, 1003, "env HTTP_PORT"},
		{"secrets dir beats env", 4, Development, 1004, "secret "},
		{"_FILE beats secrets dir", 5, Development, 1005, "file "},
		{".env is read in test", 2, Test, 1002, "/.env"},
		{".env is ignored in staging", 2, Staging, 1001, "config/staging.json"},
		{".env is ignored in production", 2, Production, 1001, "config/production.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fstest.MapFS{tt.env + ".json": {Data: []byte(`{"http":{"port":1001}}`)}}
			src, dir := testSources(t, files)
			src.Environ["APP_ENV"] = tt.env
			if tt.upTo >= 2 {
				write(t, src.DotEnv, "HTTP_PORT=1002\n")
			}
			if tt.upTo >= 3 {
				src.Environ["HTTP_PORT"] = "1003"
			}
			if tt.upTo >= 4 {
				write(t, filepath.Join(src.SecretsDir, "http_port"), "1004\n")
			}
			if tt.upTo >= 5 {
				p := filepath.Join(dir, "port-file")
				write(t, p, "1005")
				src.Environ["HTTP_PORT_FILE"] = p
			}
			cfg, _, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.Port != tt.wantPort {
				t.Errorf("port = %d, want %d", cfg.HTTP.Port, tt.wantPort)
			}
			if e := entry(t, cfg, "http.port"); !strings.HasPrefix(e.Source, tt.wantSource) && !strings.HasSuffix(e.Source, tt.wantSource) {
				t.Errorf("source = %q, want prefix %q", e.Source, tt.wantSource)
			}
		})
	}
}

func TestSecretsFromEveryAllowedLayer(t *testing.T) {
	const pg = "postgres://app:s3cr3t-canary@db.internal:5432/app"
	tests := []struct {
		name  string
		setup func(t *testing.T, src *Sources, dir string)
	}{
		{".env", func(t *testing.T, src *Sources, _ string) { write(t, src.DotEnv, "DATABASE_URL="+pg+"\n") }},
		{"env", func(_ *testing.T, src *Sources, _ string) { src.Environ["DATABASE_URL"] = pg }},
		{"secrets dir", func(t *testing.T, src *Sources, _ string) {
			write(t, filepath.Join(src.SecretsDir, "database_url"), pg+"\n")
		}},
		{"_FILE", func(t *testing.T, src *Sources, dir string) {
			write(t, filepath.Join(dir, "db"), pg)
			src.Environ["DATABASE_URL_FILE"] = filepath.Join(dir, "db")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dir := testSources(t, nil)
			tt.setup(t, &src, dir)
			cfg, _, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Database.URL.Reveal() != pg {
				t.Fatalf("database.url = %q", cfg.Database.URL.Reveal())
			}
			out, _ := json.Marshal(cfg.Entries())
			if strings.Contains(string(out), "s3cr3t") {
				t.Fatalf("entries leak the secret: %s", out)
			}
			if e := entry(t, cfg, "database.url"); e.Value != secret.Redacted || !e.Secret {
				t.Fatalf("entry = %+v", e)
			}
		})
	}
}

// TestBadInput checks that each bad input fails the load with an error that
// names the key or file and the layer, and never shows a secret.
func TestBadInput(t *testing.T) {
	const canary = "canary-pw-7731"
	tests := []struct {
		name  string
		json  string            // development.json
		env   map[string]string // environment
		dot   string            // .env content
		files map[string]string // secrets dir files
		want  []string          // substrings of the error
	}{
		{name: "port out of range in env", env: map[string]string{"HTTP_PORT": "70000"}, want: []string{"http.port", "env HTTP_PORT", "out of range"}},
		{name: "port zero in json", json: `{"http":{"port":0}}`, want: []string{"http.port", "config/development.json", "out of range"}},
		{name: "port not a number", env: map[string]string{"HTTP_PORT": "eighty"}, want: []string{"http.port", "not an integer"}},
		{name: "negative port in .env", dot: "HTTP_PORT=-1\n", want: []string{"http.port", "/.env)", "out of range"}},
		{name: "unparsable duration", env: map[string]string{"SHUTDOWN_TIMEOUT": "10 sec"}, want: []string{"shutdown.timeout", "env SHUTDOWN_TIMEOUT", "not a duration"}},
		{name: "zero timeout", json: `{"readiness":{"timeout":"0s"}}`, want: []string{"readiness.timeout", "greater than zero"}},
		{name: "zero query timeout", env: map[string]string{"DATABASE_QUERY_TIMEOUT": "0s"}, want: []string{"database.query_timeout", "env DATABASE_QUERY_TIMEOUT", "greater than zero"}},
		{name: "negative query timeout", json: `{"database":{"query_timeout":"-1s"}}`, want: []string{"database.query_timeout", "config/development.json", "negative"}},
		{name: "negative drain delay", env: map[string]string{"SHUTDOWN_DRAIN_DELAY": "-5s"}, want: []string{"shutdown.drain_delay", "negative"}},
		{name: "unknown APP_ENV", env: map[string]string{"APP_ENV": "prod"}, want: []string{"APP_ENV", "env APP_ENV", `"prod"`, "production"}},
		{name: "unknown key in json", json: `{"http":{"prot":8080}}`, want: []string{"config/development.json", `unknown key "http.prot"`}},
		{name: "unknown section in json", json: `{"cache":{"ttl":"5s"}}`, want: []string{"config/development.json", `"cache.ttl"`}},
		{name: "secret in json", json: `{"database":{"url":"postgres://u:` + canary + `@h/db"}}`, want: []string{"config/development.json", `"database.url"`, "secret"}},
		{name: "redis secret in json", json: `{"redis":{"url":"redis://:` + canary + `@h"}}`, want: []string{"config/development.json", `"redis.url"`, "secret"}},
		{name: "malformed json", json: `{"http":`, want: []string{"config/development.json", "invalid JSON"}},
		{name: "json not an object", json: `[1,2]`, want: []string{"config/development.json", "object"}},
		{name: "json trailing data", json: `{} {}`, want: []string{"config/development.json", "after the top-level object"}},
		{name: "json null value", json: `{"http":{"port":null}}`, want: []string{`"http.port"`, "null"}},
		{name: "json array value", json: `{"http":{"port":[8080]}}`, want: []string{`"http.port"`, "must be a JSON number, not a JSON array"}},
		{name: "json dotted key", json: `{"http.port":8080}`, want: []string{"config/development.json", `"http.port"`}},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "verbose"}, want: []string{"log.level", "env LOG_LEVEL", "verbose"}},
		{name: "bad log format", json: `{"log":{"format":"xml"}}`, want: []string{"log.format", "config/development.json", "xml"}},
		{name: "database url wrong scheme", env: map[string]string{"DATABASE_URL": "mysql://u:" + canary + "@h/db"}, want: []string{"database.url", "env DATABASE_URL", "scheme postgres"}},
		{name: "database url unparsable", env: map[string]string{"DATABASE_URL": "postgres://u:" + canary + "@h:port/db"}, want: []string{"database.url", "not a valid URL"}},
		{name: "database url without host", files: map[string]string{"database_url": "postgres:///" + canary}, want: []string{"database.url", "secret ", "no host"}},
		{name: "redis url wrong scheme", env: map[string]string{"REDIS_URL": "http://:" + canary + "@h"}, want: []string{"redis.url", "env REDIS_URL", "scheme redis"}},
		{name: "_FILE points nowhere", env: map[string]string{"DATABASE_URL_FILE": "/nonexistent/db"}, want: []string{"database.url", "DATABASE_URL_FILE", "/nonexistent/db"}},
		{name: "APP_ENV in .env", dot: "APP_ENV=production\n", want: []string{".env", "APP_ENV"}},
		{name: "malformed .env", dot: "GOOD=1\nDATABASE_URL='postgres://u:" + canary + "@h/db\n", want: []string{".env:2:", "never closed"}},
		{name: "max body out of range", env: map[string]string{"HTTP_MAX_BODY_BYTES": "0"}, want: []string{"http.max_body_bytes", "out of range"}},
		{name: "max conns not integer", json: `{"database":{"max_conns":2.5}}`, want: []string{"database.max_conns", "not an integer"}},
		{name: "metrics port out of range", env: map[string]string{"METRICS_PORT": "65536"}, want: []string{"metrics.port", "env METRICS_PORT", "out of range"}},
		{name: "metrics port is the API's", json: `{"http":{"port":9000}}`, env: map[string]string{"METRICS_PORT": "9000"}, want: []string{"metrics.port (from env METRICS_PORT)", "http.port (from config/development.json)", "both 9000"}},
		{name: "host with a path", env: map[string]string{"HTTP_HOST": "example.com/x"}, want: []string{"http.host", "not a host"}},
		{name: "host with a port", env: map[string]string{"HTTP_HOST": "localhost:80"}, want: []string{"http.host", "not a host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fstest.MapFS{}
			if tt.json != "" {
				files["development.json"] = &fstest.MapFile{Data: []byte(tt.json)}
			}
			src, _ := testSources(t, files)
			for k, v := range tt.env {
				src.Environ[k] = v
			}
			if tt.dot != "" {
				write(t, src.DotEnv, tt.dot)
			}
			for name, v := range tt.files {
				write(t, filepath.Join(src.SecretsDir, name), v)
			}
			cfg, _, err := Load(src)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg.Entries())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error shows a secret: %q", err)
			}
		})
	}
}

func TestListenAddress(t *testing.T) {
	tests := []struct{ host, want string }{
		{"", ":8080"},
		{"0.0.0.0", "0.0.0.0:8080"},
		{"127.0.0.1", "127.0.0.1:8080"},
		{"::", "[::]:8080"},
		{"[::1]", "[::1]:8080"},
		{"::1", "[::1]:8080"},
		{"api.internal", "api.internal:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			src, _ := testSources(t, nil)
			src.Environ["HTTP_HOST"] = tt.host
			cfg, _, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Addr(); got != tt.want {
				t.Errorf("Addr() = %q, want %q", got, tt.want)
			}
		})
	}
}

// The metrics listener shares http.host, on a port of its own; 0 turns it off.
func TestMetricsAddress(t *testing.T) {
	tests := []struct{ host, port, want string }{
		{"", "", ":9090"},
		{"127.0.0.1", "9100", "127.0.0.1:9100"},
		{"::1", "9090", "[::1]:9090"},
		{"", "0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host+" "+tt.port, func(t *testing.T) {
			src, _ := testSources(t, nil)
			src.Environ["HTTP_HOST"] = tt.host
			if tt.port != "" {
				src.Environ["METRICS_PORT"] = tt.port
			}
			cfg, _, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.MetricsAddr(); got != tt.want {
				t.Errorf("MetricsAddr() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	src, _ := testSources(t, fstest.MapFS{"development.json": {Data: []byte(`{"nope":1}`)}})
	src.Environ["HTTP_PORT"] = "0"
	src.Environ["LOG_LEVEL"] = "loud"
	_, _, err := Load(src)
	for _, w := range []string{"nope", "http.port", "log.level"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}

func TestDeploySectionBelongsToTooling(t *testing.T) {
	src, _ := testSources(t, fstest.MapFS{"development.json": {Data: []byte(`{"deploy":{"stack":"x","replicas":2},"http":{"port":9000}}`)}})
	cfg, _, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Port != 9000 {
		t.Fatalf("port = %d", cfg.HTTP.Port)
	}
}

// Keys for other tools (Compose reads .env too) and secret files for other
// services do not stop the service; the .env keys are warned of as ignored.
func TestUnrelatedDotEnvAndSecretFilesAreIgnored(t *testing.T) {
	src, _ := testSources(t, nil)
	write(t, src.DotEnv, "POSTGRES_PASSWORD=dev-canary\nCOMPOSE_PROJECT_NAME=x\n")
	write(t, filepath.Join(src.SecretsDir, "other_service_token"), "x")
	_, warnings, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 {
		t.Fatalf("warnings = %v, want one per unknown .env key", warnings)
	}
	for _, w := range warnings {
		if !strings.Contains(w.String(), "ignores it") || strings.Contains(w.String(), "dev-canary") {
			t.Errorf("warning %q: want it to say the service ignores the key, without its value", w)
		}
	}
}

// TestCommittedFiles loads each committed config/{env}.json: they must parse
// and must hold no secret.
func TestCommittedFiles(t *testing.T) {
	for _, env := range Environments {
		t.Run(env, func(t *testing.T) {
			src, _ := testSources(t, nil)
			src.Files = configfiles.Files
			src.Environ["APP_ENV"] = env
			cfg, _, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if env != Development && cfg.Log.Format != "json" {
				t.Errorf("log format in %s = %s, want json outside development", env, cfg.Log.Format)
			}
		})
	}
}

func FuzzJSONLayer(f *testing.F) {
	f.Add([]byte(`{"http":{"port":8080,"host":"x"},"deploy":{"a":[1]}}`))
	f.Add([]byte(`{"log":{"level":"debug"}}`))
	f.Add([]byte(`{"database":{"url":"postgres://x"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a":{"b":{"c":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, _ := testSources(t, fstest.MapFS{"development.json": {Data: data}})
		cfg, _, err := Load(src)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

func FuzzDotEnv(f *testing.F) {
	f.Add("HTTP_PORT=8080\n", "postgres://u:pw@h/db")
	f.Add("export LOG_LEVEL='debug' # comment\n", "x")
	f.Add("A=\"unterminated\n", "postgres://u:p@h:1/d")
	f.Add("DATABASE_URL=${HOME}\n", "")
	f.Fuzz(func(t *testing.T, content, secret string) {
		const canary = "zq9-canary"
		src, _ := testSources(t, nil)
		write(t, src.DotEnv, content+"\nDATABASE_URL="+canary+secret+"\n")
		cfg, _, err := Load(src)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		// Whatever the input, a secret must not reach an error message.
		if err != nil && strings.Contains(err.Error(), canary) && !strings.Contains(content, canary) {
			t.Fatalf("error shows the database URL: %v", err)
		}
	})
}
