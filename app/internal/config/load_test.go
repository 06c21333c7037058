package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// A SECRETS_DIR the operator set must exist; the default may be absent
// (outside Swarm there is no /run/secrets).
func TestSecretsDir(t *testing.T) {
	tests := []struct {
		name      string
		dir       func(t *testing.T) string
		isDefault bool
		want      string // substring of the error; "" for none
	}{
		{"set and missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, false, "SECRETS_DIR "},
		{"default and missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, true, ""},
		{"set and a file", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			write(t, f, "x")
			return f
		}, false, "not a directory"},
		{"set and present", func(t *testing.T) string { return t.TempDir() }, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := testSources(t, nil)
			src.SecretsDir, src.SecretsDirDefault = tt.dir(t), tt.isDefault
			_, _, err := Load(src)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), src.SecretsDir)):
				t.Fatalf("error %v, want one with %q naming %s", err, tt.want, src.SecretsDir)
			}
		})
	}
}

func TestFromProcessSecretsDir(t *testing.T) {
	t.Setenv("SECRETS_DIR", "")
	if src := FromProcess(); src.SecretsDir != DefaultSecretsDir || !src.SecretsDirDefault {
		t.Errorf("unset: %q default=%v", src.SecretsDir, src.SecretsDirDefault)
	}
	t.Setenv("SECRETS_DIR", "/srv/secrets")
	if src := FromProcess(); src.SecretsDir != "/srv/secrets" || src.SecretsDirDefault {
		t.Errorf("set: %q default=%v", src.SecretsDir, src.SecretsDirDefault)
	}
}

// A DOTENV_FILE the operator set must exist; the default ./.env may be
// absent. Only development and test read .env at all.
func TestDotEnvFile(t *testing.T) {
	tests := []struct {
		name      string
		file      func(t *testing.T) string
		isDefault bool
		appEnv    string
		want      string // substring of the error; "" for none
	}{
		{"set and missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.env") }, false, "", "DOTENV_FILE "},
		{"set and missing, test", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.env") }, false, Test, "DOTENV_FILE "},
		{"set and missing, production (not read)", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.env") }, false, Production, ""},
		{"default and missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), ".env") }, true, "", ""},
		{"set and present", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "local.env")
			write(t, f, "HTTP_PORT=9000\n")
			return f
		}, false, "", ""},
		{"set and empty", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "empty.env")
			write(t, f, "")
			return f
		}, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := testSources(t, nil)
			src.DotEnv, src.DotEnvDefault = tt.file(t), tt.isDefault
			if tt.appEnv != "" {
				src.Environ["APP_ENV"] = tt.appEnv
			}
			if tt.appEnv == Production {
				src.Environ["DATABASE_URL"] = "postgres://u:p@db:5432/app"
			}
			_, _, err := Load(src)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), src.DotEnv)):
				t.Fatalf("error %v, want one with %q naming %s", err, tt.want, src.DotEnv)
			}
		})
	}
}

func TestFromProcessDotEnv(t *testing.T) {
	t.Setenv("DOTENV_FILE", "")
	if src := FromProcess(); src.DotEnv != ".env" || !src.DotEnvDefault {
		t.Errorf("unset: %q default=%v", src.DotEnv, src.DotEnvDefault)
	}
	t.Setenv("DOTENV_FILE", "/srv/app.env")
	if src := FromProcess(); src.DotEnv != "/srv/app.env" || src.DotEnvDefault {
		t.Errorf("set: %q default=%v", src.DotEnv, src.DotEnvDefault)
	}
}

// An empty secret file would silently unset the key: it is an error naming
// the file, in both forms.
func TestEmptySecretFile(t *testing.T) {
	for _, content := range []string{"", "\n", "\r\n"} {
		t.Run(fmt.Sprintf("directory %q", content), func(t *testing.T) {
			src, _ := testSources(t, nil)
			path := filepath.Join(src.SecretsDir, "database_url")
			write(t, path, content)
			_, _, err := Load(src)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is empty") {
				t.Fatalf("error %v, want one naming %s as empty", err, path)
			}
		})
		t.Run(fmt.Sprintf("NAME_FILE %q", content), func(t *testing.T) {
			src, dir := testSources(t, nil)
			path := filepath.Join(dir, "db")
			write(t, path, content)
			src.Environ["DATABASE_URL_FILE"] = path
			src.Environ["DATABASE_URL"] = "postgres://u:p@h/db" // the file wins, even empty
			_, _, err := Load(src)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "DATABASE_URL_FILE") {
				t.Fatalf("error %v, want one naming %s and DATABASE_URL_FILE", err, path)
			}
		})
	}
}

// An unknown .env key is a warning naming it and, when one is close, the key
// it probably meant; never its value.
func TestDotEnvUnknownKeys(t *testing.T) {
	const canary = "val-canary-5521"
	tests := []struct {
		line string
		want []string // substrings of the one warning
		not  string   // must not be in it
	}{
		{"HTTP_PROT=" + canary, []string{"HTTP_PROT", "ignores it", "did you mean HTTP_PORT?"}, ""},
		{"http_port=" + canary, []string{"http_port", "did you mean HTTP_PORT?"}, ""},
		{"DATABASE_URI=" + canary, []string{"DATABASE_URI", "did you mean DATABASE_URL?"}, ""},
		{"LOG_LEVELS=" + canary, []string{"did you mean LOG_LEVEL?"}, ""},
		{"POSTGRES_PASSWORD=" + canary, []string{"POSTGRES_PASSWORD", "not a setting of the service, which ignores it", "Docker Compose"}, "did you mean"},
		{"COMPOSE_PROJECT_NAME=" + canary, []string{"COMPOSE_PROJECT_NAME", "ignores it"}, "did you mean"},
		{"DATABASE_URL_FILE=/run/x", []string{"DATABASE_URL_FILE", "environment only", "set DATABASE_URL in .env"}, "did you mean"},
		{"SECRETS_DIR=/x", []string{"SECRETS_DIR", "environment only"}, ""},
		{"PORT=" + canary, []string{"PORT", "ignores it"}, "did you mean"}, // too short to guess
	}
	for _, tt := range tests {
		key, _, _ := strings.Cut(tt.line, "=")
		t.Run(key, func(t *testing.T) {
			src, _ := testSources(t, nil)
			write(t, src.DotEnv, "HTTP_PORT=9000\n"+tt.line+"\n")
			cfg, warnings, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.Port != 9000 {
				t.Errorf("known keys still apply: port = %d", cfg.HTTP.Port)
			}
			if len(warnings) != 1 {
				t.Fatalf("warnings = %v, want one", warnings)
			}
			w := warnings[0].String()
			for _, s := range append(tt.want, src.DotEnv) {
				if !strings.Contains(w, s) {
					t.Errorf("warning %q lacks %q", w, s)
				}
			}
			if strings.Contains(w, canary) || (tt.not != "" && strings.Contains(w, tt.not)) {
				t.Errorf("warning %q shows the value or %q", w, tt.not)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"HTTP_PROT", "HTTP_PORT", 1}, {"", "ABC", 3}, {"ABC", "ABC", 0}, {"KITTEN", "SITTING", 3}, {"CA", "ABC", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// Committed JSON is strict: each key takes one JSON type and appears once.
// Every error names the file and the key.
func TestJSONIsStrict(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string
	}{
		{"port as a string", `{"http":{"port":"8080"}}`, []string{`"http.port"`, "must be a JSON number, not a JSON string"}},
		{"max conns as a string", `{"database":{"max_conns":"5"}}`, []string{`"database.max_conns"`, "JSON number"}},
		{"duration as a number", `{"shutdown":{"timeout":20}}`, []string{`"shutdown.timeout"`, `a duration, like "5s"`, "not a JSON number"}},
		{"query timeout as a number", `{"database":{"query_timeout":3}}`, []string{`"database.query_timeout"`, "not a JSON number"}},
		{"level as a boolean", `{"log":{"level":true}}`, []string{`"log.level"`, "must be a JSON string, not a JSON boolean"}},
		{"host as a number", `{"http":{"host":127}}`, []string{`"http.host"`, "not a JSON number"}},
		{"object where a value belongs", `{"http":{"port":{"value":8080}}}`, []string{`"http.port"`, "not a JSON object"}},
		{"duplicate key", `{"http":{"port":1,"port":2}}`, []string{`duplicate key "http.port"`}},
		{"duplicate section", `{"http":{"port":1},"http":{"host":"x"}}`, []string{`duplicate key "http"`}},
		{"duplicate deep in deploy", `{"deploy":{"a":{"b":[{"c":1,"c":2}]}}}`, []string{`duplicate key "deploy.a.b.c"`}},
		{"duplicate deploy", `{"deploy":{},"deploy":{}}`, []string{`duplicate key "deploy"`}},
		{"syntax error names the line", "{\n  \"http\": {\n    \"port\": 80,\n  }\n}", []string{"invalid JSON on line 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := testSources(t, fstest.MapFS{"development.json": {Data: []byte(tt.json)}})
			_, _, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range append(tt.want, "config/development.json") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// What is allowed: every kind right, empty sections, and anything in
	// deploy, which belongs to the tooling.
	src, _ := testSources(t, fstest.MapFS{"development.json": {Data: []byte(
		`{"http":{"port":9000,"host":"127.0.0.1","read_timeout":"2s"},"redis":{},"deploy":{"replicas":2,"x.y":[1,"a",null]}}`)}})
	cfg, _, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Port != 9000 || cfg.HTTP.ReadTimeout.String() != "2s" {
		t.Errorf("port %d, read timeout %s", cfg.HTTP.Port, cfg.HTTP.ReadTimeout)
	}
}

func TestDotEnvSizeCap(t *testing.T) {
	src, _ := testSources(t, nil)
	line := "# " + strings.Repeat("x", 1021) + "\n" // 1 KiB
	write(t, src.DotEnv, strings.Repeat(line, 1024))
	if _, _, err := Load(src); err != nil {
		t.Fatalf("a 1 MiB .env: %v", err)
	}
	write(t, src.DotEnv, strings.Repeat(line, 1024)+"A=1\n")
	_, _, err := Load(src)
	if err == nil || !strings.Contains(err.Error(), src.DotEnv) || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("error %v, want one naming %s and the 1 MiB limit", err, src.DotEnv)
	}
}

// A parse error names its line, also after a quoted value spanning lines,
// and never quotes the text.
func TestDotEnvErrorLine(t *testing.T) {
	const canary = "pw-canary-0917"
	var head strings.Builder
	head.WriteString("# local settings\n")
	head.WriteString("LOG_LEVEL=debug\n")
	head.WriteString("CERT=\"-----BEGIN-----\nabc\n-----END-----\"\n") // lines 3-5
	head.WriteString("export HTTP_PORT=8080 # comment\n")
	head.WriteString("SINGLE='one\ntwo'\n") // lines 7-8
	for i := 9; i < 57; i++ {
		fmt.Fprintf(&head, "KEY_%d=value %d\n", i, i)
	}
	tail := "LOG_FORMAT=text\nOTHER=\"x\"\n"
	tests := []struct {
		name, line, want string
	}{
		{"unterminated double quote", `DATABASE_URL="postgres://u:` + canary + `@h/db`, "never closed as it should be (the next quote, on line 59"},
		{"unterminated single quote", `DATABASE_URL='postgres://u:` + canary + `@h/db`, "never closed"},
		{"dash in a key", "MY-KEY=" + canary, "not a KEY=value line"},
		{"no equals sign", canary, "not a KEY=value line"},
		{"text after a quoted value", `A="x"` + canary, "not a KEY=value line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := testSources(t, nil)
			write(t, src.DotEnv, head.String()+tt.line+"\n"+tail)
			_, _, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, want := range []string{src.DotEnv + ":57: ", tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error quotes the line: %q", err)
			}
		})
	}
}
