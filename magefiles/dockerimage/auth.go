package dockerimage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/moby/api/types/registry"
)

// Secret holds a credential. It prints as [redacted] however it is
// formatted (%v, %s, %q, %#v, JSON), so it cannot leak through a log line or
// an error by accident; Reveal is the one way to the value.
type Secret struct{ v string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal returns the value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether there is no value.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) String() string { return redacted(s) }

// GoString keeps %#v from printing the field.
func (s Secret) GoString() string { return redacted(s) }

// Format covers every verb (%x included).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted(s))) }

// MarshalJSON keeps the value out of JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted(s)) }

func redacted(s Secret) string {
	if s.v == "" {
		return ""
	}
	return "[redacted]"
}

// Credentials for a registry. Source says where they came from (a variable
// name or "docker config"), never what they are.
type Credentials struct {
	Username      string
	Password      Secret
	IdentityToken Secret // OAuth refresh token from a credential helper
	RegistryToken Secret // bearer token from a credential helper
	Source        string // "" means anonymous
}

// Anonymous reports whether there is nothing to authenticate with.
func (c Credentials) Anonymous() bool {
	return c.Username == "" && c.Password.IsZero() && c.IdentityToken.IsZero() && c.RegistryToken.IsZero()
}

// header encodes c for the engine's X-Registry-Auth header. The engine
// forwards them to the registry; nothing touches disk. Anonymous is an empty
// configuration ("{}"): engines before API 1.42 refuse a push without the
// header.
func (c Credentials) header(serverAddress string) (string, error) {
	if c.Anonymous() {
		return base64.URLEncoding.EncodeToString([]byte("{}")), nil
	}
	buf, err := json.Marshal(registry.AuthConfig{
		Username:      c.Username,
		Password:      c.Password.Reveal(),
		IdentityToken: c.IdentityToken.Reveal(),
		RegistryToken: c.RegistryToken.Reveal(),
		ServerAddress: serverAddress,
	})
	if err != nil {
		return "", fmt.Errorf("encode credentials from %s", c.Source) // no %w: the error could quote them
	}
	return base64.URLEncoding.EncodeToString(buf), nil
}

// ResolveCredentials finds the credentials to push to registryHost, first
// match wins:
//
//  1. REGISTRY_USERNAME and REGISTRY_PASSWORD (both, or it is an error);
//  2. for ghcr.io, GITHUB_TOKEN, as GITHUB_ACTOR (or "x-access-token" when
//     unset: GHCR checks the token, not the name);
//  3. the Docker configuration and its credential helpers, through
//     keychain (authn.DefaultKeychain in production);
//  4. none: anonymous.
func ResolveCredentials(ctx context.Context, registryHost string, getenv func(string) string, keychain authn.Keychain) (Credentials, error) {
	user, pass := getenv("REGISTRY_USERNAME"), getenv("REGISTRY_PASSWORD")
	switch {
	case user != "" && pass != "":
		return Credentials{Username: user, Password: NewSecret(pass), Source: "REGISTRY_USERNAME/REGISTRY_PASSWORD"}, nil
	case user != "" || pass != "":
		return Credentials{}, fmt.Errorf("set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither")
	}
	if token := getenv("GITHUB_TOKEN"); token != "" && registryHost == "ghcr.io" {
		actor := getenv("GITHUB_ACTOR")
		if actor == "" {
			actor = "x-access-token"
		}
		return Credentials{Username: actor, Password: NewSecret(token), Source: "GITHUB_TOKEN"}, nil
	}
	if keychain == nil {
		return Credentials{}, nil
	}
	reg, err := name.NewRegistry(registryHost)
	if err != nil {
		return Credentials{}, fmt.Errorf("registry %q: %w", registryHost, err)
	}
	auth, err := authn.Resolve(ctx, keychain, reg)
	if err != nil {
		return Credentials{}, fmt.Errorf("look up credentials for %s in the Docker configuration: %w", registryHost, err)
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return Credentials{}, fmt.Errorf("look up credentials for %s in the Docker configuration: %w", registryHost, err)
	}
	c := Credentials{
		Username:      cfg.Username,
		Password:      NewSecret(cfg.Password),
		IdentityToken: NewSecret(cfg.IdentityToken),
		RegistryToken: NewSecret(cfg.RegistryToken),
		Source:        "docker config",
	}
	if cfg.Auth != "" && c.Username == "" && c.Password.IsZero() {
		// "auth" is base64(user:password); authn normally decodes it already.
		if raw, err := base64.StdEncoding.DecodeString(cfg.Auth); err == nil {
			if u, p, ok := strings.Cut(string(raw), ":"); ok {
				c.Username, c.Password = u, NewSecret(p)
			}
		}
	}
	if c.Anonymous() {
		return Credentials{}, nil
	}
	return c, nil
}
