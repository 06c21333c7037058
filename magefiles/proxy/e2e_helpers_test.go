package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/loadgen"
	"github.com/fractionate/service-template/magefiles/runner"
)

// writePebbleFiles writes pebble's configuration and the certificate of its
// HTTPS listeners (ACME directory and management), signed by a CA of the
// test's own (ca.pem, which Traefik is told to trust). pebble validates
// challenges on the ports Traefik serves: 80 and 443.
func writePebbleFiles(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proxy test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"pebble", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	config, err := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
		"certificate": "/etc/pebble/cert.pem", "privateKey": "/run/secrets/pebble-key.pem",
		"httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"ca.pem":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"cert.pem":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		"key.pem":     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"pebble.json": config,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// pebbleRoots fetches the root pebble signs certificates with (each pebble
// run makes a new one) from its management interface.
func (f *e2e) pebbleRoots(t *testing.T, ctx context.Context) *x509.CertPool {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(f.dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	trust := x509.NewCertPool()
	trust.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trust, MinVersion: tls.VersionTLS12}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/roots/0", f.pebblePort)
	var last error
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		last = func() error {
			resp, body, err := fetch(ctx, hc, url)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %s", resp.Status)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(body) {
				return fmt.Errorf("no certificate in %q", body)
			}
			f.roots = roots
			return nil
		}()
		if last == nil {
			return f.roots
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("GET %s: %v\n%s", url, last, serviceLogs(ctx, "proxytest-acme_pebble"))
	return nil
}

// dialTo dials 127.0.0.1:port whatever the URL names: the host names are
// made up, and Traefik publishes its ports on this host.
func dialTo(port int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
	}
}

// client is an HTTPS client of the app through Traefik that trusts only
// pebble's root, keeping connections alive as browsers do.
func (f *e2e) client() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext:         dialTo(f.httpsPort),
			TLSClientConfig:     &tls.Config{RootCAs: f.roots, ServerName: appHost, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
		},
	}
}

func (f *e2e) url(path string) string {
	return fmt.Sprintf("https://%s:%d%s", appHost, f.httpsPort, path)
}

// handshake opens a TLS connection to Traefik as a client of the app would.
func (f *e2e) handshake(t *testing.T, ctx context.Context) tls.ConnectionState {
	t.Helper()
	raw, err := dialTo(f.httpsPort)(ctx, "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, &tls.Config{RootCAs: f.roots, ServerName: appHost, MinVersion: tls.VersionTLS12})
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		t.Fatalf("TLS handshake as %s: %v", appHost, err)
	}
	return conn.ConnectionState()
}

// fetch GETs url and returns the response with its body read.
func fetch(ctx context.Context, hc *http.Client, url string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// waitServed waits until the app answers /ready through Traefik over HTTPS
// with a certificate pebble issued (until then Traefik serves its own
// self-signed one, which the client refuses).
func waitServed(t *testing.T, ctx context.Context, f *e2e, hc *http.Client, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < timeout && ctx.Err() == nil {
		resp, _, err := fetch(ctx, hc, f.url("/ready"))
		last = err
		if err == nil && resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("status %s", resp.Status)
		}
		if last == nil {
			t.Logf("served over HTTPS with a certificate from pebble after %s", time.Since(start).Round(time.Second))
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the app was not served through Traefik over HTTPS within %s: %v\ntraefik:\n%s\npebble:\n%s", timeout, last,
		serviceLogs(context.WithoutCancel(ctx), "proxytest-proxy_traefik"), serviceLogs(context.WithoutCancel(ctx), "proxytest-acme_pebble"))
}

// load sends reads and writes through Traefik, alternating, 4 at a time,
// for d, or while during runs when it is not nil.
func (f *e2e) load(t *testing.T, ctx context.Context, hc *http.Client, d time.Duration, during func(context.Context)) loadgen.Result {
	t.Helper()
	var n atomic.Int64
	o := loadgen.Options{
		Concurrency: 4, Duration: d, Client: hc,
		Request: func(ctx context.Context) (*http.Request, error) {
			if n.Add(1)%2 == 0 {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url("/v1/notes"), strings.NewReader(`{"title":"through the proxy"}`))
				if err == nil {
					req.Header.Set("Content-Type", "application/json")
				}
				return req, err
			}
			return http.NewRequestWithContext(ctx, http.MethodGet, f.url("/v1/notes?limit=5"), nil)
		},
		Check: func(resp *http.Response, body []byte) error {
			want := http.StatusOK
			if resp.Request.Method == http.MethodPost {
				want = http.StatusCreated
			}
			if resp.StatusCode != want {
				return fmt.Errorf("status %s, want %d: %.200s", resp.Status, want, body)
			}
			return nil
		},
	}
	if during == nil {
		res, err := loadgen.Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	loadCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan loadgen.Result, 1)
	go func() {
		res, _ := loadgen.Run(loadCtx, o)
		done <- res
	}()
	time.Sleep(2 * time.Second) // under load before the change starts
	during(ctx)
	stop()
	return <-done
}

// version is what /version says through the proxy.
func version(t *testing.T, ctx context.Context, hc *http.Client, url string) string {
	t.Helper()
	_, body, err := fetch(ctx, hc, url)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
	return v.Version
}

func serviceState(t *testing.T, ctx context.Context, cli *client.Client, service string) swarm.Service {
	t.Helper()
	r, err := cli.ServiceInspect(ctx, service, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", service, err)
	}
	return r.Service
}

// waitUpdated waits for the update that starts after before to complete.
func waitUpdated(t *testing.T, ctx context.Context, cli *client.Client, service string, before swarm.Service, timeout time.Duration) {
	t.Helper()
	var started time.Time
	if before.UpdateStatus != nil && before.UpdateStatus.StartedAt != nil {
		started = *before.UpdateStatus.StartedAt
	}
	deadline := time.Now().Add(timeout)
	for {
		s := serviceState(t, ctx, cli, service)
		if st := s.UpdateStatus; st != nil && st.StartedAt != nil && st.StartedAt.After(started) {
			switch st.State {
			case swarm.UpdateStateCompleted:
				return
			case swarm.UpdateStateRollbackCompleted, swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
				t.Fatalf("%s: the update ended %s: %s", service, st.State, st.Message)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: no update completed within %s (status %+v)", service, timeout, s.UpdateStatus)
		}
		time.Sleep(time.Second)
	}
}

// serviceLogs returns the last lines a service logged, for a failure message.
func serviceLogs(ctx context.Context, service string) string {
	out, err := runner.Output(ctx, runner.Command("docker", "service", "logs", "--raw", "--tail", "40", service))
	if err != nil {
		return err.Error()
	}
	return out
}

// cleanupContext bounds a clean-up, which runs after the test's context ended.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

func networkExists(t *testing.T, ctx context.Context, cli *client.Client, name string) bool {
	t.Helper()
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", "^"+name+"$")})
	if err != nil {
		t.Fatal(err)
	}
	return len(ns.Items) > 0
}

// migrate runs `app migrate up` once, as a Swarm job on the app stack's
// internal network (where the deploy pipeline runs it too), and waits for
// it to complete.
func (f *e2e) migrate(t *testing.T, ctx context.Context, image, databaseURL string) {
	t.Helper()
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "proxytest-migrate"},
		Mode:        swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: image, Args: []string{"migrate", "up"},
				Env: []string{"APP_ENV=production", "DATABASE_URL=" + databaseURL},
			},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "proxytest-app_internal"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
		},
	}
	created, err := f.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		t.Fatalf("create the migration job: %v", err)
	}
	defer func() {
		if _, err := f.cli.ServiceRemove(context.WithoutCancel(ctx), created.ID, client.ServiceRemoveOptions{}); err != nil {
			t.Errorf("remove the migration job: %v", err)
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		tasks, err := f.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", created.ID)})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks.Items {
			switch task.Status.State {
			case swarm.TaskStateComplete:
				return
			case swarm.TaskStateFailed, swarm.TaskStateRejected:
				t.Fatalf("migration job %s: %s\n%s", task.Status.State, task.Status.Err, serviceLogs(context.WithoutCancel(ctx), created.ID))
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the migration job did not complete within 2m (tasks %+v)", tasks.Items)
		}
		time.Sleep(time.Second)
	}
}
