package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/proxy"
)

// testCertificate is a throwaway CA (its certificate in PEM, to trust) and
// a leaf it signed for host, valid until notAfter, with its key, in PEM.
func testCertificate(t *testing.T, host string, notAfter time.Time) (ca, cert, key []byte) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := newKey(), newKey()
	notBefore := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "throwaway test CA"},
		NotBefore: notBefore, NotAfter: notAfter.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// setPair sets the proxy's certificate and key as secrets:set does.
func setPair(t *testing.T, s *Session, cert, key []byte) {
	t.Helper()
	for name, v := range map[string][]byte{proxy.CertificateSecret: cert, proxy.KeySecret: key} {
		if _, err := s.SetSecret(t.Context(), name, secret.New(string(v))); err != nil {
			t.Fatal(err)
		}
	}
}

// ThrowawayCertificate is testCertificate for the end-to-end tests
// (package deploy_test).
var ThrowawayCertificate = testCertificate

// proxySession is a Session of environment e (APP_HOST api.example.com)
// whose proxy takes its certificate from secrets, on a fake single-manager
// Swarm.
func proxySession(t *testing.T, protected bool) (*Session, *fakeswarm.Engine, *bytes.Buffer) {
	t.Helper()
	api := fakeswarm.New()
	var out bytes.Buffer
	env := &envfile.Environment{Name: "e", Stack: "svc", Image: "registry.example/app", AppEnv: "staging", Deadline: time.Minute, History: 10, MaxReplicas: 4,
		Protected: protected, Files: []string{"../../docker-compose.prod.yml"},
		Variables: map[string]string{"APP_HOST": "${HOST:-api.example.com}", "ROUTER": "svc", "POSTGRES_IMAGE": "registry.example/postgres:e2e"},
		Proxy: &envfile.Proxy{Stack: "proxy", CA: envfile.CASecrets, HTTPPort: 80, HTTPSPort: 443,
			Variables: map[string]string{"TRAEFIK_IMAGE": "registry.example/traefik:v3.6"}}}
	s := &Session{
		Env: env, Envs: envfile.Environments{"e": env}, API: api, Who: "ann@laptop", Out: &out, Poll: time.Millisecond,
		Auth: noAuth, Lookup: func(string) (string, bool) { return "", false },
		Registry: fakeResolver{"registry.example/traefik:v3.6": digestV2},
	}
	return s, api, &out
}

// deploy:proxy with certificates from secrets: the certificate and key go
// through secrets:set into the proxy's stack, checked as they pass; the
// dry run binds their newest versions, judges the pair and plans Traefik
// with them, the file provider's config, and no ACME.
func TestProxyFromSecrets(t *testing.T) {
	future := time.Now().AddDate(0, 3, 0)
	_, cert, key := testCertificate(t, "api.example.com", future)
	_, otherCert, otherKey := testCertificate(t, "api.example.com", future)
	_, wrongHost, wrongHostKey := testCertificate(t, "www.example.org", future)
	tests := []struct {
		name      string
		protected bool
		cert, key []byte // nil: not set
		setErr    string // secrets:set refuses
		want      []string
		wantErr   string
	}{
		{name: "a matching pair", cert: cert, key: key,
			want: []string{"tls_certificate v1 for api.example.com, valid until", "key tls_key v1 matches", "2 present (tls_certificate v1, tls_key v1)",
				"config   proxy_proxy_tls_", "service  traefik              create", "Dry run: nothing was changed."}},
		{name: "no key", cert: cert, wantErr: "no version of tls_key: create each with go tool mage secrets:set e NAME"},
		{name: "no certificate", key: key, wantErr: "no version of tls_certificate"},
		{name: "key mismatch", cert: cert, key: otherKey, wantErr: "tls_key is not the key of tls_certificate"},
		{name: "another certificate's key, the other way", cert: otherCert, key: key, wantErr: "their public keys differ"},
		{name: "wrong host", cert: wrongHost, key: wrongHostKey,
			want: []string{"warning: it does not cover APP_HOST api.example.com (it covers www.example.org) (refused on a protected environment)", "service  traefik              create"}},
		{name: "wrong host, protected", protected: true, cert: wrongHost, key: wrongHostKey, wantErr: "does not cover APP_HOST api.example.com (it covers www.example.org): every client would refuse it; environment e is protected"},
		{name: "garbage", cert: []byte("not a certificate"), key: key, setErr: "secret tls_certificate: no PEM CERTIFICATE block"},
		{name: "a key as the certificate", cert: key, key: key, setErr: "the key goes into tls_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api, out := proxySession(t, tt.protected)
			var setErr error
			for name, v := range map[string][]byte{proxy.CertificateSecret: tt.cert, proxy.KeySecret: tt.key} {
				if v == nil {
					continue
				}
				if err := s.CheckSecretName(name); err != nil {
					t.Fatal(err)
				}
				if _, err := s.SetSecret(t.Context(), name, secret.New(string(v))); err != nil {
					setErr = err
				}
			}
			if tt.setErr != "" {
				if setErr == nil || !strings.Contains(setErr.Error(), tt.setErr) {
					t.Fatalf("secrets:set: %v, want %q", setErr, tt.setErr)
				}
				if strings.Contains(setErr.Error(), "BEGIN") || strings.Contains(setErr.Error(), "not a certificate") {
					t.Errorf("the error quotes the value: %v", setErr)
				}
				for _, sec := range api.Secrets() {
					if sec.Spec.Labels["org.fractionate.deploy.secret"] == proxy.CertificateSecret {
						t.Errorf("a refused value was kept: %s", sec.Spec.Name)
					}
				}
				return
			}
			if setErr != nil {
				t.Fatal(setErr)
			}
			for _, sec := range api.Secrets() {
				if !strings.HasPrefix(sec.Spec.Name, "proxy_tls_") {
					t.Errorf("secret %s: not in the proxy's stack", sec.Spec.Name)
				}
				for k, v := range sec.Spec.Labels {
					if strings.Contains(v, "PRIVATE") || strings.Contains(v, "BEGIN") {
						t.Errorf("label %s holds PEM", k)
					}
				}
			}

			err := s.Proxy(t.Context(), ProxyOptions{Root: "../..", DryRun: true})
			got := out.String()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(got, tt.wantErr) {
					t.Fatalf("deploy:proxy: %v, want a refusal saying %q; it printed\n%s", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("deploy:proxy: %v; it printed\n%s", err, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("deploy:proxy printed\n%s\nwant %q", got, w)
				}
			}
			for _, no := range []string{"acme", "labelled", "BEGIN"} {
				if strings.Contains(got, no) {
					t.Errorf("deploy:proxy printed %q:\n%s", no, got)
				}
			}
		})
	}
}

// A certificate that expired after secrets:set took it is refused by the
// next deploy:proxy, before anything changes.
func TestProxyRefusesACertificateExpiredSinceSet(t *testing.T) {
	s, api, out := proxySession(t, false)
	_, cert, key := testCertificate(t, "api.example.com", time.Now().AddDate(0, 1, 0))
	setPair(t, s, cert, key)
	// Version 2 as secrets:set would have labelled it then: same key, an
	// end now past.
	facts, err := proxy.ParseCertificate(cert, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	facts.NotBefore, facts.NotAfter = time.Now().AddDate(-1, 0, 0), time.Now().Add(-time.Hour)
	v2 := versionedSecret("v2", "proxy", proxy.CertificateSecret, 2)
	maps.Copy(v2.Spec.Labels, facts.Labels(ledger.LabelPrefix))
	api.AddSecret(v2)
	err = s.Proxy(t.Context(), ProxyOptions{Root: "../..", DryRun: true})
	if err == nil || !strings.Contains(out.String(), "tls_certificate v2 for api.example.com") || !strings.Contains(out.String(), "the certificate expired on") {
		t.Errorf("deploy:proxy: %v\n%s", err, out.String())
	}
}

// The service deploy:proxy plans with certificates from secrets: the
// newest versions of the certificate and key as files (the key readable
// by root only), the file provider's configuration as a config, no ACME
// variable, volume or node label.
func TestProxySecretsSpec(t *testing.T) {
	s, api, _ := proxySession(t, false)
	_, cert, key := testCertificate(t, "api.example.com", time.Now().AddDate(0, 1, 0))
	for _, v := range []struct {
		name  string
		value []byte
	}{{proxy.CertificateSecret, cert}, {proxy.KeySecret, key}, {proxy.KeySecret, key}} {
		if _, err := s.SetSecret(t.Context(), v.name, secret.New(string(v.value))); err != nil {
			t.Fatal(err)
		}
	}
	pe := proxyEnvironment(s.Env, "../..", "")
	st, err := loadStack(pe, Release{Repository: "registry.example/traefik", Tag: "v3.6"}, s.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	var cs Checks
	if !st.bindSecrets(versionsOf("proxy", api.Secrets()), &Live{}, &cs) {
		t.Fatal(cs.Err())
	}
	d, err := st.Convert(t.Context(), pendingConfigs{objectLister: api, stack: "proxy"})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Services[proxy.Service].TaskTemplate.ContainerSpec
	var secrets []string
	for _, r := range c.Secrets {
		secrets = append(secrets, fmt.Sprintf("%s>%s:%o", r.SecretName, r.File.Name, r.File.Mode))
	}
	if want := "proxy_tls_certificate_v1>tls_certificate:444 proxy_tls_key_v2>tls_key:400"; strings.Join(secrets, " ") != want {
		t.Errorf("secrets %v, want %s", secrets, want)
	}
	if len(c.Configs) != 1 || c.Configs[0].File.Name != "/etc/traefik/tls.yml" || len(d.Configs) != 1 || !strings.Contains(string(d.Configs[0].Data), "/run/secrets/tls_key") {
		t.Errorf("configs %+v %+v", c.Configs, d.Configs)
	}
	for _, e := range c.Env {
		if strings.Contains(e, "ACME") || strings.Contains(e, "CERTRESOLVER") || strings.Contains(e, "BEGIN") {
			t.Errorf("environment %s", e)
		}
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Target != "/var/run/docker.sock" {
		t.Errorf("mounts %+v", c.Mounts)
	}
	if p := d.Services[proxy.Service].TaskTemplate.Placement; p == nil || strings.Join(p.Constraints, ",") != "node.role == manager" {
		t.Errorf("placement %+v", p)
	}
}

// The proxy's environment with certificates from secrets: deploy/proxy.yml
// and deploy/proxy-secrets.yml, no ACME variable.
func TestProxyEnvironmentFromSecrets(t *testing.T) {
	env := &envfile.Environment{Name: "e", Stack: "svc", Proxy: &envfile.Proxy{Stack: "proxy", CA: envfile.CASecrets, HTTPPort: 80, HTTPSPort: 443}}
	pe := proxyEnvironment(env, "/repo", "")
	if want := "/repo/deploy/proxy.yml /repo/deploy/proxy-secrets.yml"; strings.Join(pe.Files, " ") != want {
		t.Errorf("files %v, want %s", pe.Files, want)
	}
	for k := range pe.Variables {
		if strings.HasPrefix(k, "ACME_") {
			t.Errorf("variable %s with certificates from secrets", k)
		}
	}
}

// secrets:rotate is not how the proxy's certificate changes: deploy:proxy
// is.
func TestRotateRefusesTheProxysSecrets(t *testing.T) {
	s, _, out := proxySession(t, false)
	err := s.Rotate(t.Context(), proxy.KeySecret, secret.New("x"), true)
	if err == nil || !strings.Contains(out.String(), "tls_key is the proxy's: go tool mage secrets:set e tls_key, then deploy:proxy e") {
		t.Errorf("rotate: %v\n%s", err, out.String())
	}
}

// secrets:set says how a new version reaches the services: deploy:proxy
// for the proxy's, a deploy or secrets:rotate for the app's.
func TestNextStep(t *testing.T) {
	s, _, _ := proxySession(t, false)
	if got := s.NextStep(proxy.KeySecret); !strings.Contains(got, "go tool mage deploy:proxy e") {
		t.Errorf("tls_key: %q", got)
	}
	if got := s.NextStep("database_url"); !strings.Contains(got, "secrets:rotate e database_url") {
		t.Errorf("database_url: %q", got)
	}
}

// secrets:list shows the proxy's certificate and key after the app's
// secrets, never a value.
func TestListSecretsWithTheProxys(t *testing.T) {
	s, _, _ := proxySession(t, false)
	_, cert, key := testCertificate(t, "api.example.com", time.Now().AddDate(0, 1, 0))
	setPair(t, s, cert, key)
	var out bytes.Buffer
	if err := s.ListSecrets(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Secrets of e (stack svc)", "no version: go tool mage secrets:set e database_url", "The proxy's certificate and key (stack proxy)", "tls_certificate  v1", "tls_key          v1"} {
		if !strings.Contains(got, want) {
			t.Errorf("secrets:list says\n%s\nwant %q", got, want)
		}
	}
	if strings.Contains(got, "BEGIN") {
		t.Errorf("secrets:list shows a value:\n%s", got)
	}
}
