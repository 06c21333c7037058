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

	"github.com/fractionate/service-template/internal/secret"
)

// Credentials for a registry. Source says where they came from (a variable
// name or "docker config"), never what they are.
type Credentials struct {
	Username      string
	Password      secret.Value
	IdentityToken secret.Value // OAuth refresh token from a credential helper
	RegistryToken secret.Value // bearer token from a credential helper
	Source        string       // "" means anonymous
}

// Anonymous reports whether there is nothing to authenticate with.
func (c Credentials) Anonymous() bool {
	return c.Username == "" && !c.Password.IsSet() && !c.IdentityToken.IsSet() && !c.RegistryToken.IsSet()
}

// EncodedAuth encodes c for the engine's X-Registry-Auth header (image
// push, service create and update). The engine
// forwards them to the registry; nothing touches disk. Anonymous is an empty
// configuration ("{}"): engines before API 1.42 refuse a push without the
// header.
func (c Credentials) EncodedAuth(serverAddress string) (string, error) {
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

// Authenticator gives c to go-containerregistry, for registry lookups made
// from this process (resolving a tag to a digest).
func (c Credentials) Authenticator() authn.Authenticator {
	if c.Anonymous() {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      c.Username,
		Password:      c.Password.Reveal(),
		IdentityToken: c.IdentityToken.Reveal(),
		RegistryToken: c.RegistryToken.Reveal(),
	})
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
		return Credentials{Username: user, Password: secret.New(pass), Source: "REGISTRY_USERNAME/REGISTRY_PASSWORD"}, nil
	case user != "" || pass != "":
		return Credentials{}, fmt.Errorf("set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither")
	}
	if token := getenv("GITHUB_TOKEN"); token != "" && registryHost == "ghcr.io" {
		actor := getenv("GITHUB_ACTOR")
		if actor == "" {
			actor = "x-access-token"
		}
		return Credentials{Username: actor, Password: secret.New(token), Source: "GITHUB_TOKEN"}, nil
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
		Password:      secret.New(cfg.Password),
		IdentityToken: secret.New(cfg.IdentityToken),
		RegistryToken: secret.New(cfg.RegistryToken),
		Source:        "docker config",
	}
	if cfg.Auth != "" && c.Username == "" && !c.Password.IsSet() {
		// "auth" is base64(user:password); authn normally decodes it already.
		if raw, err := base64.StdEncoding.DecodeString(cfg.Auth); err == nil {
			if u, p, ok := strings.Cut(string(raw), ":"); ok {
				c.Username, c.Password = u, secret.New(p)
			}
		}
	}
	if c.Anonymous() {
		return Credentials{}, nil
	}
	return c, nil
}
