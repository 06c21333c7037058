// Package signature signs image digests and verifies them, in cosign's
// classic format: a simple-signing payload naming the digest, signed with
// an ECDSA P-256 key in cosign's key format, stored as a layer of the
// manifest tagged sha256-<hex>.sig in the image's repository with the
// signature in the layer's dev.cosignproject.cosign/signature annotation.
// That is what `cosign sign --key` writes and what `cosign verify --key`
// reads (with --insecure-ignore-tlog, since key-based signing here is
// offline and records nothing in a transparency log). The cryptography and
// the payload format are sigstore's own packages (github.com/sigstore/sigstore).
//
// Each signature also binds the image's SBOM: the digest of the SBOM
// document attached to the image (package sbom) is in the signed payload's
// annotations, so an SBOM replaced after signing no longer matches.
package signature

import (
	"crypto"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigsig "github.com/sigstore/sigstore/pkg/signature"

	"github.com/fractionate/service-template/internal/secret"
)

// The variables a signing key is read from: cosign's own names.
const (
	EnvPrivateKey = "COSIGN_PRIVATE_KEY" // the private key's PEM, or the path of a file holding it
	EnvPassword   = "COSIGN_PASSWORD"    // its password; empty for a key without one
)

// GenerateKeyPair makes a key pair in cosign's format (what `cosign
// generate-key-pair` writes): an ECDSA P-256 private key encrypted with
// password (PEM "ENCRYPTED SIGSTORE PRIVATE KEY"; an empty password still
// encrypts, as cosign does), and its public key (PEM "PUBLIC KEY").
func GenerateKeyPair(password secret.Value) (privatePEM, publicPEM []byte, err error) {
	privatePEM, publicPEM, err = cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte(password.Reveal())))
	if err != nil {
		return nil, nil, fmt.Errorf("generate a key pair: %w", err)
	}
	return privatePEM, publicPEM, nil
}

// LoadSigner reads a private key PEM (cosign's encrypted format, or an
// unencrypted PKCS#8/SEC 1 key) with its password. Errors never quote the
// key or the password.
func LoadSigner(privatePEM []byte, password secret.Value) (sigsig.SignerVerifier, error) {
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(privatePEM, cryptoutils.StaticPasswordFunc([]byte(password.Reveal())))
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") {
			return nil, errors.New("read the signing key: cannot decrypt it: wrong password?")
		}
		return nil, errors.New("read the signing key: not a PEM private key") // no %w: the error could quote it
	}
	sv, err := sigsig.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	return sv, nil
}

// SignerFromEnv loads the signing key named by COSIGN_PRIVATE_KEY (PEM, or
// a path) and COSIGN_PASSWORD. ok is false when COSIGN_PRIVATE_KEY is
// unset: signing is not configured.
func SignerFromEnv(getenv func(string) string) (sv sigsig.SignerVerifier, ok bool, err error) {
	v := getenv(EnvPrivateKey)
	if v == "" {
		return nil, false, nil
	}
	pemBytes := []byte(v)
	if !strings.Contains(v, "-----BEGIN") {
		pemBytes, err = os.ReadFile(v)
		if err != nil {
			return nil, true, fmt.Errorf("%s names a file that cannot be read: %w", EnvPrivateKey, err)
		}
	}
	sv, err = LoadSigner(pemBytes, secret.New(getenv(EnvPassword)))
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", EnvPrivateKey, err)
	}
	return sv, true, nil
}

// LoadVerifier reads a public key: PEM, or the path of a PEM file.
func LoadVerifier(key string) (sigsig.Verifier, crypto.PublicKey, error) {
	pemBytes := []byte(key)
	if !strings.Contains(key, "-----BEGIN") {
		b, err := os.ReadFile(key)
		if err != nil {
			return nil, nil, fmt.Errorf("read the public key: %w", err)
		}
		pemBytes = b
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read the public key: %w", err)
	}
	v, err := sigsig.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("read the public key: %w", err)
	}
	return v, pub, nil
}

// KeyID names a public key for people: the hex of its subject key
// identifier (SHA-1 of the key, RFC 5280), shortened.
func KeyID(pub crypto.PublicKey) string {
	skid, err := cryptoutils.SKID(pub)
	if err != nil || len(skid) < 8 {
		return "unknown key"
	}
	return fmt.Sprintf("key %x", skid[:8])
}

// Key file names, as cosign names them.
const (
	PrivateKeyFile = "cosign.key"
	PublicKeyFile  = "cosign.pub"
)

// WriteKeyPair generates a key pair (GenerateKeyPair) and writes it to dir
// as cosign.key (mode 0600) and cosign.pub. It never overwrites a key.
func WriteKeyPair(dir string, password secret.Value) (privatePath, publicPath string, err error) {
	privatePath, publicPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privatePath, publicPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists: move it away first (a key is never overwritten)", p)
		}
	}
	priv, pub, err := GenerateKeyPair(password)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	// O_EXCL: a file that appeared since the check is not overwritten either.
	f, err := os.OpenFile(privatePath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(priv); err != nil {
		_ = f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(publicPath, pub, 0o644); err != nil {
		return "", "", err
	}
	return privatePath, publicPath, nil
}
