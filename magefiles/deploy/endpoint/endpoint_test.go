package endpoint

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

func getenvMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConnectEndpoints(t *testing.T) {
	env := &envfile.Environment{Name: "staging", Endpoint: "ssh://deploy@staging.example.com"}
	tests := []struct {
		name   string
		env    *envfile.Environment
		target bool
		vars   map[string]string
		host   string // the endpoint chosen
		err    string
	}{
		{name: "the file's endpoint", env: env, target: true, host: "ssh://deploy@staging.example.com"},
		{name: "DEPLOY_HOST overrides it", env: env, target: true, vars: map[string]string{"DEPLOY_HOST": "unix:///run/other.sock"}, host: "unix:///run/other.sock"},
		{name: "the promotion source reads its own variables", env: env, target: false,
			vars: map[string]string{"DEPLOY_HOST": "ssh://prod", "DEPLOY_STAGING_HOST": "ssh://deploy@staging-2"}, host: "ssh://deploy@staging-2"},
		{name: "a bad DEPLOY_HOST", env: env, target: true, vars: map[string]string{"DEPLOY_HOST": "https://x"}, err: "DEPLOY_HOST"},
		{name: "TLS cert without key", env: &envfile.Environment{Name: "p", Endpoint: "tcp://h:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CERT": "-----BEGIN CERTIFICATE-----"}, err: "set both DEPLOY_TLS_CERT and DEPLOY_TLS_KEY"},
		{name: "TLS CA that is not PEM", env: &envfile.Environment{Name: "p", Endpoint: "tcp://h:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CA": "hunter2"}, err: "DEPLOY_TLS_CA: no PEM certificate"},
		{name: "plain tcp off loopback is refused", env: &envfile.Environment{Name: "p", Endpoint: "tcp://10.0.0.1:2375"}, target: true,
			err: "environment p: endpoint tcp://10.0.0.1:2375 (environments file) is tcp:// without TLS, which would send secrets in clear"},
		{name: "an empty CI secret does not turn TLS off", env: &envfile.Environment{Name: "p", Endpoint: "tcp://10.0.0.1:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CA": "", "DEPLOY_TLS_CERT": "", "DEPLOY_TLS_KEY": ""}, err: "without TLS"},
		{name: "plain tcp through DEPLOY_HOST is refused too", env: &envfile.Environment{Name: "p"}, target: true,
			vars: map[string]string{"DEPLOY_HOST": "tcp://build-host:2375"}, err: "(DEPLOY_HOST) is tcp:// without TLS"},
		{name: "plain tcp on loopback", env: &envfile.Environment{Name: "p", Endpoint: "tcp://127.0.0.1:2375"}, target: true, host: "tcp://127.0.0.1:2375"},
		{name: "plain tcp where the environment opts out", env: &envfile.Environment{Name: "p", Endpoint: "tcp://10.0.0.1:2375", InsecureTCP: true}, target: true, host: "tcp://10.0.0.1:2375"},
		{name: "never for a protected environment", env: &envfile.Environment{Name: "p", Endpoint: "tcp://10.0.0.1:2375", InsecureTCP: true, Protected: true}, target: true, err: "without TLS"},
		{name: "DOCKER_TLS_VERIFY without the files", env: &envfile.Environment{Name: "p", Endpoint: "tcp://10.0.0.1:2376"}, target: true,
			vars: map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/nonexistent"}, err: "DOCKER_TLS_VERIFY is set: open /nonexistent/ca.pem"},
		{name: "TLS key that does not parse is not quoted", env: &envfile.Environment{Name: "p", Endpoint: "tcp://h:2376"}, target: true,
			vars: map[string]string{"DEPLOY_TLS_CERT": "cert-canary", "DEPLOY_TLS_KEY": "key-canary"}, err: "not a matching PEM certificate and key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Connect(tt.env, tt.target, getenvMap(tt.vars))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "canary") {
					t.Errorf("the error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Endpoint.Host != tt.host {
				t.Errorf("endpoint %q, want %q", c.Endpoint.Host, tt.host)
			}
		})
	}
}

// An ssh key from the environment lives in a private temporary file for
// as long as the connection, and not after.
func TestSSHKeyFile(t *testing.T) {
	flags, cleanup, err := sshFlags("DEPLOY_", getenvMap(map[string]string{"DEPLOY_SSH_KEY": "-----BEGIN KEY-----\nabc", "DEPLOY_SSH_KNOWN_HOSTS": "host ssh-ed25519 AAAA"}))
	if err != nil {
		t.Fatal(err)
	}
	key := flags[1]
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(key)
	if !strings.HasSuffix(string(data), "\n") {
		t.Error("the key file lacks the final newline ssh wants")
	}
	if !strings.Contains(strings.Join(flags, " "), "StrictHostKeyChecking=yes") {
		t.Errorf("known hosts given but not enforced: %v", flags)
	}
	cleanup()
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Errorf("the key file outlived the connection: %v", err)
	}
}

// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH give a tcp:// endpoint its TLS, as
// they do to the docker CLI.
func TestDockerCertPath(t *testing.T) {
	dir := t.TempDir()
	writeCertFiles(t, dir)
	env := &envfile.Environment{Name: "p", Endpoint: "tcp://10.0.0.1:2376"}
	c, err := Connect(env, true, getenvMap(map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dir}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := tlsConfig("DEPLOY_", getenvMap(map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": dir}))
	if err != nil || cfg == nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("tls config from DOCKER_CERT_PATH: %+v, %v", cfg, err)
	}
}

func writeCertFiles(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{"ca.pem": cert, "cert.pem": cert, "key.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The causes a person reads when an endpoint does not answer, from the
// errors the client really returns.
func TestCause(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	info := func(host string) error {
		c, err := client.New(client.WithHost(host))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Info(t.Context(), client.InfoOptions{})
		return err
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", info("tcp://" + closed), "connection refused"},
		{"no socket", info("unix://" + filepath.Join(t.TempDir(), "docker.sock")), "no such socket"},
		{"ssh", fmt.Errorf("error during connect: Get \"http://docker.example.com/v1.41/info\": command [ssh -- deploy@staging.example.com docker system dial-stdio] has exited with exit status 255, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=ssh: Could not resolve hostname staging.example.com: Name or service not known\n"),
			"ssh: Could not resolve hostname staging.example.com: Name or service not known"},
		{"dns", &net.DNSError{Err: "no such host", Name: "staging.example.com", IsNotFound: true}, "host staging.example.com not found"},
		{"permission", fmt.Errorf("dial: %w", syscall.EACCES), "permission denied"},
		{"other", errors.New("error during connect: Get \"http://docker.example.com/v1.41/info\": something odd\nmore"), "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Cause(tt.err)
			if !strings.Contains(got, tt.want) || strings.Contains(got, "docker.example.com") || strings.Contains(got, "\n") {
				t.Errorf("Cause(%v) = %q, want %q on one line without the placeholder host", tt.err, got, tt.want)
			}
		})
	}
}

// The out-of-the-box failure is one line: the environment, the endpoint,
// the cause and what to do.
func TestUnreachableIsOneLine(t *testing.T) {
	err := Unreachable("staging", Endpoint{Host: "ssh://deploy@staging.example.com", Source: "environments file"},
		fmt.Errorf("error during connect: Get \"http://docker.example.com/v1.41/info\": command [ssh] has exited with exit status 255: stderr=ssh: Could not resolve hostname staging.example.com: Name or service not known\n"))
	msg := err.Error()
	for _, w := range []string{"environment staging", "ssh://deploy@staging.example.com does not answer", "Could not resolve hostname", "edit endpoint: of staging in deploy/environments.yml, or set DEPLOY_HOST"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "docker.example.com") {
		t.Errorf("not one clean line: %q", msg)
	}
}

// An engine that accepts the connection and never answers does not hold a
// call past ResponseTimeout.
func TestSilentEngineTimesOut(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	old := ResponseTimeout
	ResponseTimeout = 300 * time.Millisecond
	defer func() { ResponseTimeout = old }()
	c, err := Connect(&envfile.Environment{Name: "p", Endpoint: "unix://" + sock}, true, getenvMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Info(t.Context(), client.InfoOptions{})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Info against a silent engine: %v after %s", err, time.Since(start))
	}
}

// This machine's engine (no endpoint): DOCKER_HOST when set, the default
// socket otherwise, dialled as a socket through the bounded transport.
func TestLocalEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Read the request first: closing before the client has
			// written it fails the client's write (broken pipe).
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\n{}"))
			}
			c.Close()
		}
	}()
	env := &envfile.Environment{Name: "local"}
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	c, err := Connect(env, true, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(t.Context(), client.PingOptions{}); err != nil {
		t.Fatalf("DOCKER_HOST's engine: %v", err)
	}
	t.Setenv("DOCKER_HOST", "")
	d, err := Connect(env, true, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.DaemonHost() != client.DefaultDockerHost {
		t.Errorf("host %s, want the default socket", d.DaemonHost())
	}
	if _, err := d.Ping(t.Context(), client.PingOptions{}); err != nil && strings.Contains(err.Error(), "lookup") {
		t.Errorf("the default socket was dialled as a host name: %v", err)
	}
}

// fakeManager serves an engine's /info on a unix socket: a manager, or a
// worker when worker is set.
func fakeManager(t *testing.T, worker bool) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	info := `{"ServerVersion":"fake","Swarm":{"LocalNodeState":"active","ControlAvailable":true}}`
	if worker {
		info = `{"ServerVersion":"fake","Swarm":{"LocalNodeState":"active","ControlAvailable":false}}`
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/info") {
			_, _ = w.Write([]byte(info))
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

// An environment of several managers fails over to the first that answers
// as a manager, and says which it passed over and why.
func TestChooseFailsOver(t *testing.T) {
	down := "unix://" + filepath.Join(t.TempDir(), "gone.sock")
	worker, manager := fakeManager(t, true), fakeManager(t, false)
	env := &envfile.Environment{Name: "prod", Endpoints: []string{down, worker, manager}}
	c, err := Connect(env, true, getenvMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Endpoint.Host != down {
		t.Fatalf("before Choose the first is chosen, got %s", c.Endpoint.Host)
	}
	notes := c.Choose(t.Context())
	if c.Endpoint.Host != manager {
		t.Fatalf("chose %s, want the manager %s (notes %q)", c.Endpoint.Host, manager, notes)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "does not answer: no such socket") || !strings.Contains(notes[1], "is not a Swarm manager") {
		t.Errorf("notes %q", notes)
	}
	if _, err := c.Info(t.Context(), client.InfoOptions{}); err != nil {
		t.Errorf("calls go to the chosen manager: %v", err)
	}
	// DEPLOY_HOST may list several too.
	d, err := Connect(&envfile.Environment{Name: "prod"}, true, getenvMap(map[string]string{"DEPLOY_HOST": down + "," + manager}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Choose(t.Context()); d.Endpoint.Host != manager || d.Endpoint.Source != "DEPLOY_HOST" {
		t.Errorf("DEPLOY_HOST's list: chose %+v", d.Endpoint)
	}
}

// A manager of a Swarm without a leader answers a ping but takes long to
// answer /info: when no candidate answers as a manager, the one that
// answered at all is chosen, so the change's checks can say what is wrong
// with it (rather than that the first, dead one does not answer).
func TestChooseKeepsTheOneThatAnswers(t *testing.T) {
	old := ResponseTimeout
	ResponseTimeout = 200 * time.Millisecond
	t.Cleanup(func() { ResponseTimeout = old })
	sock := filepath.Join(t.TempDir(), "slow.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		if strings.HasSuffix(r.URL.Path, "/info") {
			<-r.Context().Done() // as a leaderless manager: no answer in time
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	down, slow := "unix://"+filepath.Join(t.TempDir(), "gone.sock"), "unix://"+sock

	c, err := Connect(&envfile.Environment{Name: "prod", Endpoints: []string{down, slow}}, true, getenvMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	notes := c.Choose(t.Context())
	if c.Endpoint.Host != slow {
		t.Fatalf("chose %s, want the one that answered, %s (notes %q)", c.Endpoint.Host, slow, notes)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "does not answer: no such socket") || !strings.Contains(notes[1], "answers, but not with what it is") {
		t.Errorf("notes %q", notes)
	}
}
