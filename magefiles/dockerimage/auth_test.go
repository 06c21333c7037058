package dockerimage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/fractionate/service-template/internal/secret"
)

// TestCredentialsNeverPrint: printing credentials, as an error or a log
// line might, never shows the password.
func TestCredentialsNeverPrint(t *testing.T) {
	s := secret.New("canary-9f2")
	c := Credentials{Username: "u", Password: s, Source: "x"}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{
		fmt.Sprint(s), fmt.Sprintf("%s %v %q %x %X %#v %+v %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", c, c, c), string(j), s.String(),
	} {
		if strings.Contains(got, "canary-9f2") || strings.Contains(got, fmt.Sprintf("%x", "canary-9f2")) {
			t.Errorf("secret printed: %s", got)
		}
	}
	if s.Reveal() != "canary-9f2" {
		t.Error("Reveal lost the value")
	}
}

func TestResolveCredentials(t *testing.T) {
	// A Docker config with a login for one registry, as `docker login` writes it.
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("cfguser:cfg-pass"))
	cfg := `{"auths":{"registry.example:5000":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)

	tests := []struct {
		name      string
		registry  string
		env       map[string]string
		wantUser  string
		wantPass  string
		wantSrc   string
		wantError string
	}{
		{name: "REGISTRY_* win", registry: "ghcr.io", env: map[string]string{"REGISTRY_USERNAME": "bot", "REGISTRY_PASSWORD": "pw", "GITHUB_TOKEN": "gh"}, wantUser: "bot", wantPass: "pw", wantSrc: "REGISTRY_USERNAME/REGISTRY_PASSWORD"},
		{name: "half of REGISTRY_*", registry: "ghcr.io", env: map[string]string{"REGISTRY_USERNAME": "bot"}, wantError: "set both REGISTRY_USERNAME and REGISTRY_PASSWORD"},
		{name: "GITHUB_TOKEN for ghcr.io", registry: "ghcr.io", env: map[string]string{"GITHUB_TOKEN": "ghs_x", "GITHUB_ACTOR": "octo"}, wantUser: "octo", wantPass: "ghs_x", wantSrc: "GITHUB_TOKEN"},
		{name: "GITHUB_TOKEN without actor", registry: "ghcr.io", env: map[string]string{"GITHUB_TOKEN": "ghs_x"}, wantUser: "x-access-token", wantPass: "ghs_x", wantSrc: "GITHUB_TOKEN"},
		{name: "GITHUB_TOKEN is not sent elsewhere", registry: "registry.example:5000", env: map[string]string{"GITHUB_TOKEN": "ghs_x"}, wantUser: "cfguser", wantPass: "cfg-pass", wantSrc: "docker config"},
		{name: "docker config", registry: "registry.example:5000", wantUser: "cfguser", wantPass: "cfg-pass", wantSrc: "docker config"},
		{name: "nothing: anonymous", registry: "127.0.0.1:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			c, err := ResolveCredentials(context.Background(), tt.registry, getenv, authn.DefaultKeychain)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err = %v, want %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Username != tt.wantUser || c.Password.Reveal() != tt.wantPass || c.Source != tt.wantSrc {
				t.Errorf("got %q/%q from %q, want %q/%q from %q", c.Username, c.Password.Reveal(), c.Source, tt.wantUser, tt.wantPass, tt.wantSrc)
			}
			if c.Anonymous() != (tt.wantUser == "") {
				t.Errorf("Anonymous() = %v", c.Anonymous())
			}
		})
	}
}
