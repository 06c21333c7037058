package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// issued is a throwaway CA and a leaf it signed, in PEM.
type issued struct {
	leaf, chain, key, caPEM []byte
}

// issue makes a CA and a leaf for names valid from notBefore to notAfter.
func issue(t *testing.T, names []string, notBefore, notAfter time.Time) issued {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: notBefore.Add(-time.Hour), NotAfter: notAfter.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return issued{leaf: leaf, chain: append(append([]byte{}, leaf...), caPEM...), caPEM: caPEM,
		key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

// The checks a certificate and key go through: when each is set
// (ParseCertificate, ParseKey) and at each deploy, from the facts kept as
// labels (CheckPair).
func TestCertificateChecks(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	good := issue(t, []string{"api.example.com", "*.example.com"}, now.AddDate(0, -1, 0), now.AddDate(0, 6, 0))
	other := issue(t, []string{"api.example.com"}, now.AddDate(0, -1, 0), now.AddDate(0, 6, 0))
	expired := issue(t, []string{"api.example.com"}, now.AddDate(-1, 0, 0), now.AddDate(0, 0, -1))
	future := issue(t, []string{"api.example.com"}, now.AddDate(0, 0, 1), now.AddDate(1, 0, 0))
	soon := issue(t, []string{"api.example.com"}, now.AddDate(0, -3, 0), now.AddDate(0, 0, 10))
	ip := issue(t, []string{"10.0.0.7"}, now.AddDate(0, -1, 0), now.AddDate(0, 6, 0))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})

	tests := []struct {
		name      string
		cert, key []byte
		host      string
		setErr    string // refused by secrets:set
		err       string // refused by every deploy
		hostErr   string // refused by a protected environment's deploy
		warning   string
		later     time.Duration // the deploy comes this long after secrets:set
	}{
		{name: "good, with its chain", cert: good.chain, key: good.key, host: "api.example.com"},
		{name: "good, a wildcard", cert: good.leaf, key: good.key, host: "www.example.com"},
		{name: "an IP address", cert: ip.leaf, key: ip.key, host: "10.0.0.7"},
		{name: "garbage", cert: []byte("hello"), key: good.key, setErr: "no PEM CERTIFICATE block"},
		{name: "garbage key", cert: good.leaf, key: []byte("-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n"), setErr: "the private key does not parse"},
		{name: "no key at all", cert: good.leaf, key: []byte("secret"), setErr: "no PEM block"},
		{name: "a corrupt certificate", cert: []byte("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"), key: good.key, setErr: "certificate 1 of the PEM"},
		{name: "the key in the certificate's secret", cert: append(append([]byte{}, good.leaf...), good.key...), key: good.key, setErr: "the key goes into tls_key"},
		{name: "a chain out of order", cert: append(append([]byte{}, good.caPEM...), good.leaf...), key: good.key, setErr: "certificate 1 is not signed by certificate 2"},
		{name: "expired", cert: expired.leaf, key: expired.key, setErr: "the certificate expired on"},
		{name: "not yet valid", cert: future.leaf, key: future.key, setErr: "not valid before"},
		{name: "key mismatch", cert: good.leaf, key: other.key, host: "api.example.com", err: "tls_key is not the key of tls_certificate"},
		{name: "an RSA key of another certificate", cert: good.leaf, key: pkcs1, host: "api.example.com", err: "their public keys differ"},
		{name: "wrong host", cert: good.leaf, key: good.key, host: "api.example.org", hostErr: "does not cover APP_HOST api.example.org (it covers api.example.com, *.example.com)"},
		{name: "a wildcard covers one label only", cert: good.leaf, key: good.key, host: "a.b.example.com", hostErr: "does not cover APP_HOST"},
		{name: "expired since it was set", cert: good.leaf, key: good.key, host: "api.example.com", later: 200 * 24 * time.Hour, err: "the certificate expired on"},
		{name: "expiring soon", cert: soon.leaf, key: soon.key, host: "api.example.com", warning: "it expires in 10 day(s)"},
		{name: "no host to check", cert: good.leaf, key: good.key, warning: "no APP_HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, certErr := ParseCertificate(tt.cert, now)
			pub, keyErr := ParseKey(tt.key)
			setErr := certErr
			if setErr == nil {
				setErr = keyErr
			}
			if tt.setErr != "" {
				if setErr == nil || !strings.Contains(setErr.Error(), tt.setErr) {
					t.Fatalf("set: %v, want %q", setErr, tt.setErr)
				}
				if strings.Contains(setErr.Error(), "aGVsbG8") || strings.Contains(setErr.Error(), "hello") || strings.Contains(setErr.Error(), "secret") {
					t.Errorf("the error quotes the value: %v", setErr)
				}
				return
			}
			if setErr != nil {
				t.Fatal(setErr)
			}
			// What a deploy reads back: the labels only.
			facts, err := FactsFromLabels("p.", facts.Labels("p."))
			if err != nil {
				t.Fatal(err)
			}
			pub, err = KeyFromLabels("p.", KeyLabels("p.", pub))
			if err != nil {
				t.Fatal(err)
			}
			p := CheckPair(facts, pub, tt.host, now.Add(tt.later))
			for what, e := range map[string]struct {
				got  error
				want string
			}{"error": {p.Err, tt.err}, "host error": {p.HostErr, tt.hostErr}} {
				switch {
				case e.want == "" && e.got != nil:
					t.Errorf("%s %v", what, e.got)
				case e.want != "" && (e.got == nil || !strings.Contains(e.got.Error(), e.want)):
					t.Errorf("%s %v, want %q", what, e.got, e.want)
				}
			}
			if w := strings.Join(p.Warnings, "; "); tt.warning == "" && w != "" || !strings.Contains(w, tt.warning) {
				t.Errorf("warnings %q, want %q", w, tt.warning)
			}
		})
	}
}

// A deploy refuses a version whose labels say nothing (made by hand, not
// by secrets:set).
func TestFactsFromLabelsRefusesBareVersions(t *testing.T) {
	if _, err := FactsFromLabels("p.", map[string]string{"p.tls-names": "x"}); err == nil {
		t.Error("a certificate version without facts was read")
	}
	if _, err := KeyFromLabels("p.", nil); err == nil {
		t.Error("a key version without facts was read")
	}
}
