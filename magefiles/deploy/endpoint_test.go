package deploy

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

func getenvMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConnectEndpoints(t *testing.T) {
	env := &Environment{Name: "staging", Endpoint: "ssh://deploy@staging.example.com"}
	tests := []struct {
		name   string
		env    *Environment
		target bool
		vars   map[string]string
		host   string // the endpoint chosen
		err    string
	}{
		{name: "the file's endpoint", env: env, target: true, host: "ssh://deploy@staging.example.com"},
		{name: "DEPLOY_HOST overrides it", env: env, target: true, vars: map[string]string{"DEPLOY_HOST": "tcp://10.0.0.1:2376"}, host: "tcp://10.0.0.1:2376"},
		{name: "the promotion source reads its own variables", env: env, target: false,
			vars: map[string]string{"DEPLOY_HOST": "tcp://prod:2376", "DEPLOY_STAGING_HOST": "tcp://staging:2376"}, host: "tcp://staging:2376"},
		{name: "a bad DEPLOY_HOST", env: env, target: true, vars: map[string]string{"DEPLOY_HOST": "https://x"}, err: "DEPLOY_HOST"},
		{name: "TLS cert without key", env: &Environment{Name: "p", Endpoint: "tcp://h:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CERT": "-----BEGIN CERTIFICATE-----"}, err: "set both DEPLOY_TLS_CERT and DEPLOY_TLS_KEY"},
		{name: "TLS CA that is not PEM", env: &Environment{Name: "p", Endpoint: "tcp://h:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CA": "hunter2"}, err: "DEPLOY_TLS_CA: no PEM certificate"},
		{name: "TLS key that does not parse is not quoted", env: &Environment{Name: "p", Endpoint: "tcp://h:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CERT": "cert-canary", "DEPLOY_TLS_KEY": "key-canary"}, err: "not a matching PEM certificate and key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Connect(tt.env, tt.target, getenvMap(tt.vars))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "canary") {
					t.Errorf("the error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Endpoint.Host != tt.host {
				t.Errorf("endpoint %q, want %q", c.Endpoint.Host, tt.host)
			}
		})
	}
}

// An ssh key from the environment lives in a private temporary file for
// as long as the connection, and not after.
func TestSSHKeyFile(t *testing.T) {
	flags, cleanup, err := sshFlags("DEPLOY_", getenvMap(map[string]string{"DEPLOY_SSH_KEY": "-----BEGIN KEY-----\nabc", "DEPLOY_SSH_KNOWN_HOSTS": "host ssh-ed25519 AAAA"}))
	if err != nil {
		t.Fatal(err)
	}
	key := flags[1]
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(key)
	if !strings.HasSuffix(string(data), "\n") {
		t.Error("the key file lacks the final newline ssh wants")
	}
	if !strings.Contains(strings.Join(flags, " "), "StrictHostKeyChecking=yes") {
		t.Errorf("known hosts given but not enforced: %v", flags)
	}
	cleanup()
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Errorf("the key file outlived the connection: %v", err)
	}
}

// unreachable is an engine deploy:init must not reach, or reaches and
// finds not answering.
type unreachable struct{ client.APIClient }

func (unreachable) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	return client.SystemInfoResult{}, errors.New("reached")
}

// deploy:init prepares this machine's engine only: DEPLOY_HOST, which
// Connect honours, must not point it at a remote Swarm.
func TestInitOnlyOnThisMachine(t *testing.T) {
	env := &Environment{Name: "local", Stack: "svc"}
	tests := []struct {
		name string
		vars map[string]string
		err  string
	}{
		{name: "this machine's engine", err: "the Docker engine does not answer: reached"},
		{name: "DEPLOY_HOST", vars: map[string]string{"DEPLOY_HOST": "tcp://10.0.0.1:2376"}, err: "DEPLOY_HOST points the connection at tcp://10.0.0.1:2376: unset DEPLOY_HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Connect(env, true, getenvMap(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = Init(t.Context(), unreachable{}, env, InitOptions{Out: io.Discard, Endpoint: c.Endpoint})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}
