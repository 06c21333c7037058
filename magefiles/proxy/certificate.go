package proxy

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Certificates of one's own (proxy.ca: secrets): SecretsFile over File
// serves the certificate and key of two Docker secrets of the proxy's
// stack, versioned like the app's.
const (
	// ACMEFile is the override that takes certificates from an ACME CA.
	ACMEFile = "deploy/proxy-acme.yml"
	// SecretsFile is the override that takes them from Docker secrets.
	SecretsFile = "deploy/proxy-secrets.yml"
	// CertificateSecret holds the certificate, then its chain, in PEM.
	CertificateSecret = "tls_certificate"
	// KeySecret holds the certificate's private key, in PEM.
	KeySecret = "tls_key"
)

// Secrets are the logical secrets SecretsFile names.
var Secrets = []string{CertificateSecret, KeySecret}

// ExpiryWarning is how long before its end a certificate is warned of.
const ExpiryWarning = 21 * 24 * time.Hour

// CertificateFacts are what a deploy needs to know of a certificate, all
// public: the Engine API never gives a secret's value back, so these are
// taken when the value passes through secrets:set and kept as labels of
// its version.
type CertificateFacts struct {
	Names     []string // DNS names and IP addresses it covers
	NotBefore time.Time
	NotAfter  time.Time
	PublicKey string // SHA-256 of the public key (SubjectPublicKeyInfo), hex
}

// Label names of the facts, after a caller's prefix.
const (
	labelNames     = "tls-names"
	labelNotBefore = "tls-not-before"
	labelNotAfter  = "tls-not-after"
	labelPublicKey = "tls-public-key"
)

// ParseCertificate reads a PEM certificate, its chain after it, and
// returns the leaf's facts. It refuses what Traefik could not serve or
// what is surely a mistake: no certificate, anything else in the PEM (a
// private key above all: it would end up in the wrong secret), a chain out
// of order, a certificate that has expired or is not yet valid at now.
// Its errors never quote the value.
func ParseCertificate(data []byte, now time.Time) (CertificateFacts, error) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if strings.TrimSpace(string(rest)) != "" && len(chain) > 0 {
				return CertificateFacts{}, errors.New("text after the last PEM block: want only CERTIFICATE blocks")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return CertificateFacts{}, fmt.Errorf("a %s block is in it: the key goes into %s, on its own", b.Type, KeySecret)
			}
			return CertificateFacts{}, fmt.Errorf("a %s block is in it: want only CERTIFICATE blocks (the certificate, then its chain)", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return CertificateFacts{}, fmt.Errorf("certificate %d of the PEM: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return CertificateFacts{}, errors.New("no PEM CERTIFICATE block: want the certificate, then its chain, in PEM")
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return CertificateFacts{}, fmt.Errorf("certificate %d is not signed by certificate %d: want the server's certificate first, then each issuer in order: %w", i+1, i+2, err)
		}
	}
	leaf := chain[0]
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	f := CertificateFacts{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, PublicKey: hex.EncodeToString(spki[:])}
	f.Names = append(f.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		f.Names = append(f.Names, ip.String())
	}
	if len(f.Names) == 0 {
		return CertificateFacts{}, fmt.Errorf("the certificate (subject %q) names no host (no subject alternative name): clients ignore the common name", leaf.Subject.CommonName)
	}
	if err := f.valid(now); err != nil {
		return CertificateFacts{}, err
	}
	return f, nil
}

// valid refuses a certificate outside its validity at now.
func (f CertificateFacts) valid(now time.Time) error {
	switch {
	case now.After(f.NotAfter):
		return fmt.Errorf("the certificate expired on %s", f.NotAfter.UTC().Format(time.DateTime))
	case now.Before(f.NotBefore):
		return fmt.Errorf("the certificate is not valid before %s", f.NotBefore.UTC().Format(time.DateTime))
	}
	return nil
}

// ParseKey reads a PEM private key (PKCS #8, PKCS #1 or SEC 1, not
// encrypted: Traefik reads it as is) and returns the SHA-256 of its public
// key, to match it to a certificate. Its errors never quote the value.
func ParseKey(data []byte) (string, error) {
	b, rest := pem.Decode(data)
	if b == nil {
		return "", errors.New("no PEM block: want the private key in PEM")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "", errors.New("more than one PEM block: want the private key alone")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return "", errors.New("the key is encrypted: Traefik reads it as is; give it decrypted (the secret is what protects it)")
	default:
		return "", fmt.Errorf("a %s block: want a PRIVATE KEY", b.Type)
	}
	if err != nil {
		return "", errors.New("the private key does not parse") // x509's error may describe its content
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return "", fmt.Errorf("a %T key cannot sign", key)
	}
	spki, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return "", fmt.Errorf("the key's public half: %w", err)
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:]), nil
}

// Labels are the facts as labels, their names after prefix.
func (f CertificateFacts) Labels(prefix string) map[string]string {
	return map[string]string{
		prefix + labelNames:     strings.Join(f.Names, ","),
		prefix + labelNotBefore: f.NotBefore.UTC().Format(time.RFC3339),
		prefix + labelNotAfter:  f.NotAfter.UTC().Format(time.RFC3339),
		prefix + labelPublicKey: f.PublicKey,
	}
}

// KeyLabels are a key's facts as labels: the hash of its public key.
func KeyLabels(prefix, publicKey string) map[string]string {
	return map[string]string{prefix + labelPublicKey: publicKey}
}

// FactsFromLabels reads what Labels wrote.
func FactsFromLabels(prefix string, l map[string]string) (CertificateFacts, error) {
	f := CertificateFacts{PublicKey: l[prefix+labelPublicKey]}
	var err1, err2 error
	f.NotBefore, err1 = time.Parse(time.RFC3339, l[prefix+labelNotBefore])
	f.NotAfter, err2 = time.Parse(time.RFC3339, l[prefix+labelNotAfter])
	if l[prefix+labelNames] != "" {
		f.Names = strings.Split(l[prefix+labelNames], ",")
	}
	if err := errors.Join(err1, err2); err != nil || f.PublicKey == "" || len(f.Names) == 0 {
		return f, errors.New("its labels lack what secrets:set records of a certificate")
	}
	return f, nil
}

// KeyFromLabels reads what KeyLabels wrote.
func KeyFromLabels(prefix string, l map[string]string) (string, error) {
	if k := l[prefix+labelPublicKey]; k != "" {
		return k, nil
	}
	return "", errors.New("its labels lack what secrets:set records of a key")
}

// Pair is a deploy's judgement of a certificate and key.
type Pair struct {
	// Err refuses the deploy: the key is not the certificate's, or the
	// certificate is outside its validity.
	Err error
	// HostErr says the certificate does not cover the host clients use:
	// every client would refuse it. The caller decides whether it refuses.
	HostErr error
	// Warnings are worth a look and refuse nothing.
	Warnings []string
}

// CheckPair judges a certificate and key by their facts, for host at now.
func CheckPair(cert CertificateFacts, key, host string, now time.Time) Pair {
	var p Pair
	if cert.PublicKey != key {
		p.Err = fmt.Errorf("%s is not the key of %s (their public keys differ): set the key that goes with the certificate", KeySecret, CertificateSecret)
		return p
	}
	if p.Err = cert.valid(now); p.Err != nil {
		return p
	}
	if left := cert.NotAfter.Sub(now); left < ExpiryWarning {
		p.Warnings = append(p.Warnings, fmt.Sprintf("it expires in %d day(s), on %s: set a new one", int(left.Hours()/24), cert.NotAfter.UTC().Format(time.DateOnly)))
	}
	switch {
	case host == "":
		p.Warnings = append(p.Warnings, "no APP_HOST to check its names against")
	case !cert.covers(host):
		p.HostErr = fmt.Errorf("it does not cover APP_HOST %s (it covers %s)", host, strings.Join(cert.Names, ", "))
	}
	return p
}

// covers says whether the certificate is valid for host, as a client
// checks it (wildcards of one label, IP addresses).
func (f CertificateFacts) covers(host string) bool {
	c := &x509.Certificate{}
	for _, n := range f.Names {
		if ip := net.ParseIP(n); ip != nil {
			c.IPAddresses = append(c.IPAddresses, ip)
		} else {
			c.DNSNames = append(c.DNSNames, n)
		}
	}
	return c.VerifyHostname(host) == nil
}

// String sums the facts up for a preflight line.
func (f CertificateFacts) String() string {
	names := slices.Clone(f.Names)
	if len(names) > 4 {
		names = append(names[:4], fmt.Sprintf("and %d more", len(f.Names)-4))
	}
	return fmt.Sprintf("for %s, valid until %s", strings.Join(names, ", "), f.NotAfter.UTC().Format(time.DateOnly))
}
