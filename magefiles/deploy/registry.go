package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/signature"
)

// resolver looks images up in their registry.
type resolver interface {
	// Digest returns the digest of ref's manifest (ref may hold a tag, a
	// digest, or both: then the digest must exist).
	Digest(ctx context.Context, ref string) (string, error)
	// Version returns the version the build stamped into the image's
	// labels (org.opencontainers.image.version); "" when there is none.
	Version(ctx context.Context, ref string) (string, error)
	// Verify checks ref's signature by key and the SBOM it binds
	// (package signature).
	Verify(ctx context.Context, ref, key string) (signature.Report, error)
}

// errNotInRegistry is returned for an image or tag the registry does not
// have.
var errNotInRegistry = errors.New("not in the registry")

// Registry is the Resolver that asks registries over HTTP. Registries on
// loopback are spoken to over plain HTTP, as the engine does.
//
// The credentials image:push takes from the process environment
// (REGISTRY_USERNAME/REGISTRY_PASSWORD, GITHUB_TOKEN) are the environment's
// own registry's: they go to the host of its image and nowhere else. Any
// other host (Docker Hub for postgres, say) gets what the Docker credential
// store has for it, or nothing: a pull token sent there would leak, and
// Swarm would keep it in that service's spec and send it on every pull.
type Registry struct {
	Scope    string // the host the environment's credentials are for
	Getenv   func(string) string
	Keychain authn.Keychain // authn.DefaultKeychain in production

	mu    sync.Mutex
	creds map[string]dockerimage.Credentials
}

// newRegistry is the Resolver of an environment whose image is in repo.
func newRegistry(repo string, getenv func(string) string, keychain authn.Keychain) *Registry {
	return &Registry{Scope: registryHost(repo), Getenv: getenv, Keychain: keychain}
}

// scopedCredentials are the variables credentials come from, for host.
var scopedCredentials = []string{"REGISTRY_USERNAME", "REGISTRY_PASSWORD", "GITHUB_TOKEN"}

func (r *Registry) getenv(host string) func(string) string {
	return func(k string) string {
		if host != r.Scope && slices.Contains(scopedCredentials, k) {
			return ""
		}
		return r.Getenv(k)
	}
}

func (r *Registry) options(ctx context.Context, ref name.Reference) ([]remote.Option, error) {
	host := ref.Context().RegistryStr()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.creds[host]
	if !ok {
		var err error
		c, err = dockerimage.ResolveCredentials(ctx, host, r.getenv(host), r.Keychain)
		if err != nil {
			return nil, err
		}
		if r.creds == nil {
			r.creds = map[string]dockerimage.Credentials{}
		}
		r.creds[host] = c
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(c.Authenticator())}, nil
}

// EncodedAuth is what Swarm pulls image with (X-Registry-Auth): the same
// credentials the lookups use, scoped the same way.
func (r *Registry) EncodedAuth(ctx context.Context, image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", err
	}
	host := reference.Domain(named)
	c, err := r.credentials(ctx, host)
	if err != nil {
		return "", err
	}
	return c.EncodedAuth(host)
}

// credentials returns what Registry authenticates to host with.
func (r *Registry) credentials(ctx context.Context, host string) (dockerimage.Credentials, error) {
	ref, err := name.ParseReference(host + "/x")
	if err != nil {
		return dockerimage.Credentials{}, err
	}
	if _, err := r.options(ctx, ref); err != nil {
		return dockerimage.Credentials{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.creds[ref.Context().RegistryStr()], nil
}

// parse reads ref for go-containerregistry: with a digest, the digest
// wins and the tag is for people only.
func parse(ref string) (name.Reference, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	s := named.Name()
	if d, ok := named.(reference.Digested); ok {
		s += "@" + d.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		s += ":" + t.Tag()
	} else {
		s += ":latest"
	}
	return name.ParseReference(s, name.StrictValidation)
}

// lookup parses ref and prepares the request options for its registry.
func (r *Registry) lookup(ctx context.Context, ref string) (name.Reference, []remote.Option, error) {
	nr, err := parse(ref)
	if err != nil {
		return nil, nil, err
	}
	opts, err := r.options(ctx, nr)
	return nr, opts, err
}

// Digest implements Resolver.
func (r *Registry) Digest(ctx context.Context, ref string) (string, error) {
	nr, opts, err := r.lookup(ctx, ref)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(nr, opts...)
	if err != nil {
		return "", registryError(ref, err)
	}
	return desc.Digest.String(), nil
}

// Version implements Resolver.
func (r *Registry) Version(ctx context.Context, ref string) (string, error) {
	nr, opts, err := r.lookup(ctx, ref)
	if err != nil {
		return "", err
	}
	img, err := remote.Image(nr, opts...)
	if err != nil {
		return "", registryError(ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", registryError(ref, err)
	}
	return cf.Config.Labels["org.opencontainers.image.version"], nil
}

// Verify implements resolver.
func (r *Registry) Verify(ctx context.Context, ref, key string) (signature.Report, error) {
	nr, opts, err := r.lookup(ctx, ref)
	if err != nil {
		return signature.Report{}, err
	}
	return signature.Verify(ctx, nr.String(), signature.Policy{Key: key}, opts...)
}

func registryError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusNotFound ||
		strings.Contains(te.Error(), "MANIFEST_UNKNOWN") || strings.Contains(te.Error(), "NAME_UNKNOWN")) {
		return fmt.Errorf("%s: %w", ref, errNotInRegistry)
	}
	return fmt.Errorf("look up %s in its registry: %w", ref, err)
}
