package signature

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	sigsig "github.com/sigstore/sigstore/pkg/signature"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/sbom"
)

// startRegistry runs go-containerregistry's registry in-process on
// loopback, with or without the referrers API.
func startRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(referrers)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushRandom pushes a random image to repo and returns its digest.
func pushRandom(t *testing.T, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(repo + "@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref.(name.Digest)
}

type keyPair struct {
	signer sigsig.SignerVerifier
	public string // PEM
}

func newKey(t *testing.T) keyPair {
	t.Helper()
	priv, pub, err := GenerateKeyPair(secret.New("pw"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(priv, secret.New("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{signer: s, public: string(pub)}
}

func attach(t *testing.T, d name.Digest, doc string) v1.Hash {
	t.Helper()
	a, err := sbom.Attach(context.Background(), d, []byte(doc), timeZero)
	if err != nil {
		t.Fatal(err)
	}
	return a.Document
}

func sign(t *testing.T, d name.Digest, k keyPair, sbomDigest string) {
	t.Helper()
	var anns map[string]string
	if sbomDigest != "" {
		anns = map[string]string{SBOMAnnotation: sbomDigest}
	}
	if err := Sign(context.Background(), d, k.signer, anns); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	ours, theirs := newKey(t), newKey(t)
	const doc = `{"bomFormat":"CycloneDX","specVersion":"1.6"}`
	docDigest, _, _ := v1.SHA256(strings.NewReader(doc))
	tests := []struct {
		name    string
		setup   func(t *testing.T, repo string, d name.Digest)
		wantErr error
		wantMsg string
	}{
		{
			name: "valid",
			setup: func(t *testing.T, repo string, d name.Digest) {
				sign(t, d, ours, attach(t, d, doc).String())
			},
		},
		{
			name:    "unsigned",
			setup:   func(t *testing.T, repo string, d name.Digest) { attach(t, d, doc) },
			wantErr: ErrUnsigned, wantMsg: "no signature for %DIGEST%",
		},
		{
			name: "signed by another key",
			setup: func(t *testing.T, repo string, d name.Digest) {
				sign(t, d, theirs, attach(t, d, doc).String())
			},
			wantErr: ErrWrongKey, wantMsg: "signed by another key",
		},
		{
			name: "signature copied from another digest",
			setup: func(t *testing.T, repo string, d name.Digest) {
				other := pushRandom(t, repo)
				sign(t, other, ours, attach(t, other, doc).String())
				attach(t, d, doc)
				sigs, err := remote.Image(SignatureTag(other))
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.Write(SignatureTag(d), sigs); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: ErrOtherDigest, wantMsg: "signature is for another digest",
		},
		{
			name: "SBOM replaced after signing",
			setup: func(t *testing.T, repo string, d name.Digest) {
				sign(t, d, ours, docDigest.String())
				attach(t, d, `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}`)
			},
			wantErr: ErrSBOMMismatch, wantMsg: "SBOM digest mismatch: the signature binds SBOM " + docDigest.String(),
		},
		{
			name:    "SBOM missing",
			setup:   func(t *testing.T, repo string, d name.Digest) { sign(t, d, ours, docDigest.String()) },
			wantErr: ErrSBOMMissing, wantMsg: "SBOM missing",
		},
		{
			name: "signed without binding the SBOM",
			setup: func(t *testing.T, repo string, d name.Digest) {
				attach(t, d, doc)
				sign(t, d, ours, "")
			},
			wantErr: ErrSBOMUnbound,
		},
		{
			name: "another key's signature beside ours",
			setup: func(t *testing.T, repo string, d name.Digest) {
				a := attach(t, d, doc).String()
				sign(t, d, theirs, a)
				sign(t, d, ours, a)
			},
		},
	}
	for _, referrers := range []bool{true, false} {
		mode := map[bool]string{true: "referrers API", false: "referrers tag"}[referrers]
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				repo := startRegistry(t, referrers) + "/acme/api"
				d := pushRandom(t, repo)
				tt.setup(t, repo, d)
				r, err := Verify(context.Background(), d.String(), Policy{Key: ours.public})
				if tt.wantErr == nil {
					if err != nil {
						t.Fatal(err)
					}
					if r.Signatures != 1 || r.SBOM.Document != docDigest || r.Image != d {
						t.Errorf("report = %+v", r)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if want := strings.ReplaceAll(tt.wantMsg, "%DIGEST%", d.String()); !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
			})
		}
	}
}

// Where the SBOM lives: the registry's referrers API when it has one, the
// sha256-<hex> referrers tag when it does not; Find reads either.
func TestSBOMReferrersAPIAndTagFallback(t *testing.T) {
	for _, referrers := range []bool{true, false} {
		repo := startRegistry(t, referrers) + "/acme/api"
		d := pushRandom(t, repo)
		a := attach(t, d, "{}")
		tags, err := remote.List(d.Context())
		if err != nil {
			t.Fatal(err)
		}
		fallback := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1)).TagStr()
		hasTag := strings.Contains(strings.Join(tags, " "), fallback)
		if hasTag == referrers {
			t.Errorf("referrers API %v: tags %q (fallback tag present: %v)", referrers, tags, hasTag)
		}
		found, err := sbom.Find(context.Background(), d)
		if err != nil || len(found) != 1 || found[0].Document != a || string(found[0].Doc) != "{}" {
			t.Errorf("referrers API %v: found %+v, %v", referrers, found, err)
		}
		// Attaching the same document again adds nothing.
		attach(t, d, "{}")
		if found, _ := sbom.Find(context.Background(), d); len(found) != 1 {
			t.Errorf("referrers API %v: %d SBOMs after attaching one twice", referrers, len(found))
		}
	}
}

func TestSignTwiceStoresOneSignature(t *testing.T) {
	repo := startRegistry(t, true) + "/acme/api"
	d := pushRandom(t, repo)
	k := newKey(t)
	sign(t, d, k, "sha256:1")
	sign(t, d, k, "sha256:1")
	sigs, err := signatures(d, nil)
	if err != nil || len(sigs.entries) != 1 {
		t.Fatalf("%d signatures (%v), want 1", len(sigs.entries), err)
	}
	sign(t, d, k, "sha256:2") // another payload: a second signature
	if sigs, _ := signatures(d, nil); len(sigs.entries) != 2 {
		t.Errorf("%d signatures, want 2", len(sigs.entries))
	}
}

func TestKeys(t *testing.T) {
	priv, pub, err := GenerateKeyPair(secret.New("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----") || !strings.HasPrefix(string(pub), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("not cosign's format:\n%s\n%s", priv, pub)
	}
	if _, err := LoadSigner(priv, secret.New("wrong horse")); err == nil || strings.Contains(err.Error(), "horse") || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("wrong password: err = %v", err)
	}
	if _, err := LoadSigner([]byte("garbage"), secret.New("")); err == nil || strings.Contains(err.Error(), "garbage") {
		t.Errorf("not a key: err = %v", err)
	}

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{string(priv), keyFile} {
		env := map[string]string{EnvPrivateKey: v, EnvPassword: "correct horse"}
		s, ok, err := SignerFromEnv(func(k string) string { return env[k] })
		if err != nil || !ok || s == nil {
			t.Fatalf("SignerFromEnv: %v, %v", ok, err)
		}
		verifier, _, err := LoadVerifier(string(pub))
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := s.SignMessage(strings.NewReader("m"))
		if err := verifier.VerifySignature(strings.NewReader(string(sig)), strings.NewReader("m")); err != nil {
			t.Errorf("the public key does not verify the private key's signature: %v", err)
		}
	}
	if _, ok, err := SignerFromEnv(func(string) string { return "" }); ok || err != nil {
		t.Errorf("no key configured: ok %v, err %v", ok, err)
	}
}

var timeZero time.Time

func TestWriteKeyPair(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := WriteKeyPair(dir, secret.New("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", priv, fi, err)
	}
	if _, _, err := LoadVerifier(pub); err != nil {
		t.Errorf("public key file: %v", err)
	}
	before, _ := os.ReadFile(priv)
	if _, _, err := WriteKeyPair(dir, secret.New("pw")); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("second keygen: err = %v", err)
	}
	if after, _ := os.ReadFile(priv); string(after) != string(before) {
		t.Error("the key was overwritten")
	}
}
