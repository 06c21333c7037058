package appconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeApp stands in for the service binary: it refuses APP_ENV=broken the
// way the service does, and fails if anything of the caller's environment
// or working directory reaches it. (The real binary runs in magefiles/lint's
// tests.)
const fakeApp = `#!/bin/sh
[ "$1" = config ] || { echo "want the config command, got $*" >&2; exit 2; }
[ -z "$LEAKED$HOME" ] || { echo "the caller's environment leaked in" >&2; exit 1; }
[ ! -e .env ] || { echo "a .env file is in the working directory" >&2; exit 1; }
[ -d "$SECRETS_DIR" ] || { echo "no secrets directory" >&2; exit 1; }
[ -f "$DOTENV_FILE" ] && [ ! -s "$DOTENV_FILE" ] || { echo "DOTENV_FILE $DOTENV_FILE: not an empty file (the service refuses a missing one)" >&2; exit 1; }
if [ "$APP_ENV" = broken ]; then
  echo "app: configuration:" >&2
  echo 'config/broken.json: unknown key "htp.port"' >&2
  exit 1
fi
echo '{"database.url":{"value":"[REDACTED]"}}'
`

func TestCheck(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(bin, []byte(fakeApp), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEAKED", "1")
	tests := []struct {
		name  string
		files []string
		want  string // substring of the error; "" for none
	}{
		{"every file accepted", []string{"development.json", "production.json", "embed.go"}, ""},
		{"one refused", []string{"development.json", "broken.json"}, "config/broken.json: the service refuses it (APP_ENV=broken app config):\n    app: configuration:\n    config/broken.json: unknown key \"htp.port\""},
		{"no files", []string{"embed.go"}, "config: no *.json configuration files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Check(t.Context(), bin, dir, "config")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("want no error, got:\n%v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got:\n%v\nwant it to contain:\n%s", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "development.json"):
				t.Fatalf("an accepted file is reported:\n%v", err)
			}
		})
	}
}
