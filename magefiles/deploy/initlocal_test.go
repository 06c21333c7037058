package deploy

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
)

// deploy:init makes version 1 of each init secret, once, and never shows
// a value.
func TestInitSecrets(t *testing.T) {
	api := fakeswarm.New()
	env := &envfile.Environment{Name: "local", Stack: "svc", InitSecrets: map[string]string{
		"postgres_password": "{{random}}",
		"database_url":      "postgres://app:{{postgres_password}}@postgres:5432/app",
	}}
	var out bytes.Buffer
	if err := ensureSecrets(t.Context(), api, env, &out, false); err != nil {
		t.Fatal(err)
	}
	data := map[string]string{}
	for _, s := range api.Secrets() {
		data[s.Spec.Name] = string(s.Spec.Data)
	}
	pw := data["svc_postgres_password_v1"]
	if len(pw) < 40 || data["svc_database_url_v1"] != "postgres://app:"+pw+"@postgres:5432/app" {
		t.Fatalf("secrets made: %v", slices.Sorted(maps.Keys(data)))
	}
	if strings.Contains(out.String(), pw) {
		t.Errorf("the output shows a generated value:\n%s", out.String())
	}
	out.Reset()
	if err := ensureSecrets(t.Context(), api, env, &out, false); err != nil {
		t.Fatal(err)
	}
	if len(api.Secrets()) != 2 || strings.Count(out.String(), "exists") != 2 {
		t.Errorf("a second init made more secrets (%d) or did not say they exist:\n%s", len(api.Secrets()), out.String())
	}
	// A dry run makes nothing.
	dry := fakeswarm.New()
	out.Reset()
	if err := ensureSecrets(t.Context(), dry, env, &out, true); err != nil {
		t.Fatal(err)
	}
	if len(dry.Secrets()) != 0 || strings.Count(out.String(), "would be created") != 2 {
		t.Errorf("a dry run made %d secrets or did not say what it would make:\n%s", len(dry.Secrets()), out.String())
	}
	// One that needs the value of an existing one cannot be made.
	api = fakeswarm.New()
	api.AddSecret(versionedSecret("pg", "svc", "postgres_password", 1))
	err := ensureSecrets(t.Context(), api, env, &out, false)
	if err == nil || !strings.Contains(err.Error(), "needs the value of postgres_password") || !strings.Contains(err.Error(), "secrets:set local database_url") {
		t.Errorf("err = %v, want one saying database_url needs postgres_password's value", err)
	}
}

// deploy:init makes the secrets others embed first, and refuses, before
// making any, what would leave two that do not match.
func TestInitSecretsOrder(t *testing.T) {
	pgURL := map[string]string{
		"postgres_password": "{{random}}",
		"database_url":      "postgres://app:{{postgres_password}}@postgres:5432/app",
	}
	tests := []struct {
		name    string
		secrets map[string]string
		have    []swarm.Secret // versions that exist
		dryRun  bool
		want    []string // the secrets made, in order; or the lines a dry run prints
		err     []string // substrings of the error
	}{
		{name: "embedded first", secrets: pgURL, want: []string{"svc_postgres_password_v1", "svc_database_url_v1"}},
		{name: "a chain", secrets: map[string]string{"a": "{{b}}/{{c}}", "b": "{{c}}", "c": "{{random}}"},
			want: []string{"svc_c_v1", "svc_b_v1", "svc_a_v1"}},
		{name: "dry run says it in that order", secrets: pgURL, dryRun: true,
			want: []string{"Secret postgres_password: version 1 would be created", "Secret database_url: version 1 would be created"}},
		{name: "missing while an existing one embeds it", secrets: pgURL, have: []swarm.Secret{versionedSecret("u", "svc", "database_url", 1)},
			err: []string{"init_secrets.postgres_password has no version while database_url (svc_database_url_v1) embeds its value", "secrets:set local postgres_password"}},
		{name: "needs an existing one's value", secrets: pgURL, have: []swarm.Secret{versionedSecret("p", "svc", "postgres_password", 1)},
			err: []string{"init_secrets.database_url needs the value of postgres_password", "secrets:set local database_url"}},
		{name: "a loop", secrets: map[string]string{"a": "{{b}}", "b": "{{a}}"}, err: []string{"a refers to itself through a -> b -> a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := fakeswarm.New()
			for _, sec := range tt.have {
				api.AddSecret(sec)
			}
			var out bytes.Buffer
			err := ensureSecrets(t.Context(), api, &envfile.Environment{Name: "local", Stack: "svc", InitSecrets: tt.secrets}, &out, tt.dryRun)
			var made []string
			for _, s := range api.Secrets()[len(tt.have):] {
				made = append(made, s.Spec.Name)
			}
			if len(tt.err) > 0 {
				if err == nil {
					t.Fatalf("made %v, want an error", made)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if len(made) > 0 {
					t.Errorf("refused, but made %v", made)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.dryRun {
				made = strings.Split(strings.TrimSpace(out.String()), "\n")
			}
			if !slices.Equal(made, tt.want) {
				t.Errorf("made %q, want %q", made, tt.want)
			}
		})
	}
}

// {{name}} embeds any init secret, whatever characters its name has.
func TestInitSecretsEmbedAnyName(t *testing.T) {
	api := fakeswarm.New()
	env := &envfile.Environment{Name: "local", Stack: "svc", InitSecrets: map[string]string{"pg-password.1": "{{random}}", "url": "x:{{pg-password.1}}"}}
	if err := ensureSecrets(t.Context(), api, env, io.Discard, false); err != nil {
		t.Fatal(err)
	}
	data := map[string]string{}
	for _, s := range api.Secrets() {
		data[s.Spec.Name] = string(s.Spec.Data)
	}
	if pw := data["svc_pg-password.1_v1"]; len(pw) < 40 || data["svc_url_v1"] != "x:"+pw {
		t.Errorf("url embeds %q, not the password", strings.TrimPrefix(data["svc_url_v1"], "x:"))
	}
}

// deploy:init prepares this machine's engine only: DEPLOY_HOST, which
// Connect honours, must not point it at a remote Swarm.
func TestInitOnlyOnThisMachine(t *testing.T) {
	env := &envfile.Environment{Name: "local", Stack: "svc"}
	tests := []struct {
		name string
		vars map[string]string
		err  string
	}{
		{name: "this machine's engine", err: "the Docker engine does not answer: reached"},
		{name: "DEPLOY_HOST", vars: map[string]string{"DEPLOY_HOST": "ssh://deploy@10.0.0.1"}, err: "DEPLOY_HOST points the connection at ssh://deploy@10.0.0.1: unset DEPLOY_HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := endpoint.Connect(env, true, func(k string) string { return tt.vars[k] })
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			unreachable := fakeswarm.New()
			unreachable.Err = map[string]error{"Info": errors.New("reached")}
			err = Init(t.Context(), unreachable, env, InitOptions{Out: io.Discard, Endpoint: c.Endpoint})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}
