package deploy

import (
	"errors"
	"net/http/httptest"
	"strings"
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

	r := &Registry{Getenv: func(string) string { return "" }, Keychain: authn.NewMultiKeychain()}
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
		if _, err := r.Digest(ctx, missing); !errors.Is(err, ErrNotInRegistry) {
			t.Errorf("Digest(%s) = %v, want ErrNotInRegistry", missing, err)
		}
	}
}
