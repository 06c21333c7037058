package publish

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/sbom"
	"github.com/fractionate/service-template/magefiles/signature"
)

// tinyBuild is a Built of a small Go program (standard library only), as
// BuildImage would give it, without an engine.
func tinyBuild(t *testing.T, repository, version string) dockerimage.Built {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module example.com/tiny\n\ngo 1.26\n",
		"main.go": "package main\n\nfunc main() { println(\"hi\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", "app", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stamp := dockerimage.Stamp{Version: version, Commit: "abc", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	img, err := dockerimage.Assemble(filepath.Join(dir, "app"), stamp, dockerimage.HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return dockerimage.Built{Image: img, Digest: d.String(), Refs: dockerimage.Refs(repository, []string{"abc1234", "v1.0.0"})}
}

func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	priv, pub, err := signature.GenerateKeyPair(secret.New(""))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(priv, secret.New(""))
	if err != nil {
		t.Fatal(err)
	}
	repository := startRegistry(t) + "/acme/api"
	built := tinyBuild(t, repository, "v1.0.0")

	// Signed: what a protected environment's preflight accepts.
	res, err := Publish(ctx, built, Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signed || res.Image.String() != repository+"@"+built.Digest || len(res.Pushed) != 2 {
		t.Errorf("result = %+v", res)
	}
	rep, err := signature.Verify(ctx, repository+":v1.0.0", signature.Policy{Key: string(pub)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Image != res.Image || rep.SBOM.Document != res.SBOM.Document {
		t.Errorf("report %+v, result %+v", rep, res)
	}
	a, err := sbom.Current(ctx, res.Image)
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbom.Decode(a.Doc)
	if err != nil {
		t.Fatal(err)
	}
	if c := bom.Metadata.Component; c.Name != "example.com/tiny" || c.Version != "v1.0.0" || bom.Metadata.Timestamp != "2025-01-02T03:04:05Z" {
		t.Errorf("SBOM subject %+v at %s", bom.Metadata.Component, bom.Metadata.Timestamp)
	}
}

// Without a key the SBOM is still attached; image:sign later signs the
// pushed image and binds that same SBOM.
func TestPublishUnsignedThenSign(t *testing.T) {
	ctx := context.Background()
	priv, pub, _ := signature.GenerateKeyPair(secret.New("pw"))
	signer, _ := signature.LoadSigner(priv, secret.New("pw"))
	repository := startRegistry(t) + "/acme/api"
	res, err := Publish(ctx, tinyBuild(t, repository, "v1.0.0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signed {
		t.Error("signed without a key")
	}
	if _, err := signature.Verify(ctx, res.Image.String(), signature.Policy{Key: string(pub)}); !errors.Is(err, signature.ErrUnsigned) {
		t.Fatalf("unsigned image: err = %v", err)
	}
	d, a, err := Sign(ctx, repository+":abc1234", signer, dockerimage.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if d != res.Image || a.Document != res.SBOM.Document {
		t.Errorf("signed %s binding %s; published %s with %s", d, a.Document, res.Image, res.SBOM.Document)
	}
	if found, _ := sbom.Find(ctx, d); len(found) != 1 {
		t.Errorf("%d SBOMs after signing, want the one Publish attached", len(found))
	}
	if _, err := signature.Verify(ctx, res.Image.String(), signature.Policy{Key: string(pub)}); err != nil {
		t.Errorf("after image:sign: %v", err)
	}
}

// "Which of these images contain module M, at which version": from their
// SBOMs; an image without one says so.
func TestLookup(t *testing.T) {
	ctx := context.Background()
	repository := startRegistry(t) + "/acme/api"
	res, err := Publish(ctx, tinyBuild(t, repository, "v1.0.0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	bare := tinyBuild(t, repository, "v1.0.1") // another image
	bare.Refs = dockerimage.Refs(repository, []string{"bare"})
	pushed, err := dockerimage.PushImage(ctx, bare.Image, bare.Refs, dockerimage.Credentials{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bareDigest, err := name.NewDigest(repository + "@" + pushed[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	found, err := sbom.Lookup(ctx, []name.Digest{res.Image, bareDigest}, "stdlib")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || !found[0].HasSBOM || found[0].Version != runtime.Version() || found[1].HasSBOM || found[1].Version != "" {
		t.Errorf("found = %+v", found)
	}
	found, _ = sbom.Lookup(ctx, []name.Digest{res.Image}, "github.com/jackc/pgx/v5")
	if found[0].Version != "" {
		t.Errorf("a module the binary does not contain: %+v", found)
	}
}

// Two SBOMs attached (an older generator's and this one's): Current picks
// the one this version makes from the image.
func TestCurrentSBOMAmongSeveral(t *testing.T) {
	ctx := context.Background()
	repository := startRegistry(t) + "/acme/api"
	res, err := Publish(ctx, tinyBuild(t, repository, "v1.0.0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sbom.Attach(ctx, res.Image, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if found, _ := sbom.Find(ctx, res.Image); len(found) != 2 {
		t.Fatalf("%d SBOMs attached, want 2", len(found))
	}
	a, err := sbom.Current(ctx, res.Image)
	if err != nil || a.Document != res.SBOM.Document {
		t.Errorf("Current = %s, %v; want %s", a.Document, err, res.SBOM.Document)
	}
}
