package deploy

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The resolver against a real registry implementation, in-process on
// loopback.
func TestRegistryResolver(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.version": "v1.2.3"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host + "/acme/app:v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	r := newRegistry(host+"/acme/app", func(string) string { return "" }, authn.NewMultiKeychain())
	ctx := t.Context()
	got, err := r.Digest(ctx, host+"/acme/app:v1.2.3")
	if err != nil || got != want.String() {
		t.Fatalf("Digest(tag) = %q, %v; want %s", got, err, want)
	}
	// A digest is checked, and the tag beside it is for people only.
	if got, err := r.Digest(ctx, host+"/acme/app:whatever@"+want.String()); err != nil || got != want.String() {
		t.Errorf("Digest(tag@digest) = %q, %v", got, err)
	}
	if v, err := r.Version(ctx, host+"/acme/app@"+want.String()); err != nil || v != "v1.2.3" {
		t.Errorf("Version = %q, %v; want the stamped v1.2.3", v, err)
	}
	for _, missing := range []string{host + "/acme/app:v9.9.9", host + "/acme/nope:v1", host + "/acme/app@sha256:" + strings.Repeat("0", 64)} {
		if _, err := r.Digest(ctx, missing); !errors.Is(err, errNotInRegistry) {
			t.Errorf("Digest(%s) = %v, want ErrNotInRegistry", missing, err)
		}
	}
}

// authRegistry is a real registry that asks for Basic credentials when
// challenge is set, and keeps every Authorization header it is sent.
type authRegistry struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newAuthRegistry(t *testing.T, challenge bool) *authRegistry {
	r := &authRegistry{}
	inner := registry.New()
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := req.Header.Get("Authorization")
		if a != "" {
			r.mu.Lock()
			r.seen = append(r.seen, a)
			r.mu.Unlock()
		}
		if challenge && a == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *authRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

func (r *authRegistry) headers() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.seen, "\n")
}

// REGISTRY_USERNAME/REGISTRY_PASSWORD are the environment's registry's: the
// digest lookup of another image (postgres, on another host) and the auth
// Swarm is given to pull it carry none of them.
func TestCredentialsStayWithTheirRegistry(t *testing.T) {
	own, other := newAuthRegistry(t, true), newAuthRegistry(t, false)
	for _, reg := range []*authRegistry{own, other} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.NewTag(reg.host() + "/acme/img:v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "ci", Password: "pull-token-canary"})); err != nil {
			t.Fatal(err)
		}
	}
	own.seen, other.seen = nil, nil
	env := map[string]string{"REGISTRY_USERNAME": "ci", "REGISTRY_PASSWORD": "pull-token-canary", "GITHUB_TOKEN": "gh-canary"}
	r := newRegistry(own.host()+"/acme/img", func(k string) string { return env[k] }, authn.NewMultiKeychain())
	ctx := t.Context()
	if _, err := r.Digest(ctx, own.host()+"/acme/img:v1"); err != nil {
		t.Fatalf("the environment's own registry, with its credentials: %v", err)
	}
	if _, err := r.Digest(ctx, other.host()+"/acme/img:v1"); err != nil {
		t.Fatalf("another registry, anonymously: %v", err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:pull-token-canary"))
	if !strings.Contains(own.headers(), basic) {
		t.Errorf("the environment's registry was not sent its credentials: %q", own.headers())
	}
	if h := other.headers(); h != "" {
		t.Errorf("another registry was sent credentials: %q", h)
	}
	for img, wantCreds := range map[string]bool{own.host() + "/acme/img:v1": true, other.host() + "/acme/img:v1": false} {
		a, err := r.EncodedAuth(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.URLEncoding.DecodeString(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(raw), "pull-token-canary"); got != wantCreds {
			t.Errorf("Swarm's pull auth for %s carries the credentials: %v, want %v", img, got, wantCreds)
		}
		if strings.Contains(string(raw), "gh-canary") {
			t.Errorf("GITHUB_TOKEN went into the pull auth for %s", img)
		}
	}
}
