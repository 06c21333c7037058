package deploy_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/internal/swarmtest"
	"github.com/fractionate/service-template/magefiles/deploy"
)

// onWorkers runs the app at two replicas, one per worker: the manager
// keeps Traefik and Postgres, as a small production Swarm would.
const onWorkers = `version: "3.9"
services:
  app:
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
`

// proxyPoll is how often Traefik reads the Swarm's tasks
// (PROXY_REFRESH_SECONDS, 5s by default): a failure may come this long
// after the deploy ended, while Traefik still routes to what it last read.
const proxyPoll = 5 * time.Second

// Scenario 10: a worker lost mid-deploy, as clients of the proxy see it.
// A bed of one manager and two workers; deploy:proxy with a certificate
// from secrets (a throwaway CA and a leaf for the app's made-up host name,
// set with secrets:set), the app at two replicas on the workers; then,
// under HTTPS load from this process to the manager's address on the bed
// (TLS verified against the test's CA), a v1 -> v2 deploy during which one
// worker's engine is killed. The deploy must end with an honest exit code
// (0: converged on the surviving worker; 2: restored), naming the node;
// afterwards the proxy serves v2 from the surviving worker (after a second
// deploy when the first was restored); failures, if any, all began after
// the kill and before the deploy's exit plus proxyPoll: requests in flight
// to the lost worker's task (POSTs are not retried; they time out), and
// any sent while Traefik had no healthy task it knew of (503). Last, the
// certificate is rotated: a new pair set, deploy:proxy, the new one served.
func TestE2EMultinodeProxyWorkerLost(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	src := cmp.Or(os.Getenv("TRAEFIK_IMAGE"), "local/traefik:v3.6")
	if _, err := f.cli.ImageInspect(t.Context(), src); err != nil {
		dockertest.Missing(t, fmt.Sprintf("the proxy's tests need the image %s (TRAEFIK_IMAGE; .ci/traefik.sh builds it)", src))
	}
	traefik := f.registry + "/traefik:v3.6"
	if _, err := f.push(t.Context(), src, traefik); err != nil {
		t.Fatalf("push %s: %v", traefik, err)
	}
	workers := filepath.Join(f.tmp, "on-workers-"+unique()[:4]+".yml")
	if err := os.WriteFile(workers, []byte(onWorkers), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBed(t, f, swarmtest.Options{}, workers)
	mgr := b.c.Managers()[0]
	host := b.stack + ".e2e.test" // the fixture's APP_HOST
	b.env = f.writeEnv(t.Name()+"-"+unique()[:4], envSpec{Name: "e2e", Stack: b.stack, Files: b.extra, Endpoints: []string{mgr.Host}, Deadline: "4m",
		// The bed's engines have their sockets in their own directories.
		Proxy: fmt.Sprintf(`{ca: secrets, variables: {TRAEFIK_IMAGE: %q, PROXY_DOCKER_SOCKET: %q}}`, traefik, strings.TrimPrefix(mgr.Host, "unix://"))})

	caPEM, cert, key := deploy.ThrowawayCertificate(t, host, time.Now().AddDate(0, 1, 0))
	for name, value := range map[string][]byte{"tls_certificate": cert, "tls_key": key} {
		if out, code := f.runTargetIn(t.Context(), b.env, nil, bytes.NewReader(value), "secrets:set", "e2e", name); code != 0 {
			t.Fatalf("secrets:set e2e %s exited %d:\n%s", name, code, out)
		}
	}
	start := time.Now()
	out := expect(t, f, b.env, 0, "deploy:proxy", "e2e")
	proxyTook := time.Since(start)
	for _, want := range []string{"certificates from secrets", "ok    certificate tls_certificate v1 for " + host, "key tls_key v1 matches", "OK: http://tasks.traefik:8080/ping"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy:proxy does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "BEGIN") {
		t.Errorf("deploy:proxy printed PEM:\n%s", out)
	}
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if on := b.tasksByNode(t, "app"); len(on) != 2 || on[mgr.Name] != 0 {
		t.Fatalf("app's tasks are on %v, want one on each worker", on)
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the test CA's certificate does not parse")
	}
	// The single-node proxy test's client side, pointed at the bed.
	fr := &front{f: f, host: host, httpsPort: 443}
	cl := &bedClient{url: fr.url(""), hc: bedHTTPClient(mgr, host, pool)}
	fr.waitServed(t, cl.hc, 2*time.Minute)
	state := cl.handshake(t)
	if leaf := state.PeerCertificates[0]; len(state.VerifiedChains) == 0 || leaf.VerifyHostname(host) != nil {
		t.Fatalf("the proxy served %v, not verified against the test's CA", leaf.DNSNames)
	}

	before := fr.measure(t, cl.hc, nil)
	var (
		code           int
		deployOut      string
		killAt, exitAt time.Time
		lost           *swarmtest.Node
	)
	deployStart := time.Now()
	during := fr.measure(t, cl.hc, func() {
		dout, done := b.background(t, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		waitFor(t, dout, "app: ", 3*time.Minute)
		lost = b.c.Workers()[1]
		killAt = time.Now()
		if err := b.c.Kill(lost); err != nil {
			t.Error(err)
		}
		select {
		case code = <-done:
		case <-time.After(5 * time.Minute):
			t.Errorf("the deploy did not end within 5 minutes of the kill:\n%s", dout.String())
		}
		exitAt, deployOut = time.Now(), dout.String()
	})
	t.Logf("the deploy, exit %d in %s:\n%s", code, exitAt.Sub(deployStart).Round(100*time.Millisecond), deployOut)
	if t.Failed() {
		t.FailNow()
	}

	var b2 strings.Builder
	tw := tabwriter.NewWriter(&b2, 0, 4, 2, ' ', 0)
	window := "-"
	if during.Failed > 0 {
		window = fmt.Sprintf("%s (from %.1fs after the kill)", during.LastFailure.Sub(during.FirstFailure).Round(10*time.Millisecond), during.FirstFailure.Sub(killAt).Seconds())
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	fmt.Fprintln(tw, "worker lost mid-deploy (HTTPS through Traefik)\trequests\tfailed\tfailure window\tp99 before\tp99 during\tmax during\tdeploy exit\tdeploy took")
	fmt.Fprintf(tw, "v1 -> v2, %s killed\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", lost.Name, during.Sent, during.Failed, window,
		ms(before.Percentile(0.99)), ms(during.Percentile(0.99)), ms(during.Percentile(1)), code, exitAt.Sub(deployStart).Round(100*time.Millisecond))
	_ = tw.Flush()
	t.Logf("GET and POST /v1/notes alternating, 4 in flight, keep-alive, to %s:443; deploy:proxy took %s\n%s", mgr.Addr, proxyTook.Round(100*time.Millisecond), b2.String())
	if len(during.Errors) > 0 {
		t.Logf("failures (the first %d): %q", len(during.Errors), during.Errors)
	}
	t.Logf("FIGURES | 10 a worker lost mid-deploy, through the proxy | %d requests, %d failed | window %s | p99 %s before, %s during | exit %d after %.1fs, %.1fs after the kill",
		during.Sent, during.Failed, window, ms(before.Percentile(0.99)), ms(during.Percentile(0.99)), code, exitAt.Sub(deployStart).Seconds(), exitAt.Sub(killAt).Seconds())

	if code != 0 && code != 2 {
		t.Fatalf("the deploy exited %d, want 0 (converged on the surviving worker) or 2 (restored)", code)
	}
	if !strings.Contains(deployOut, lost.Name) {
		t.Errorf("the deploy's output does not name the node that went down (%s)", lost.Name)
	}
	if before.Failed > 0 {
		t.Errorf("%d of %d requests failed before the deploy: %q", before.Failed, before.Sent, before.Errors)
	}
	if during.Failed > 0 {
		if during.FirstFailure.Before(killAt) {
			t.Errorf("requests failed %.1fs before the worker was killed: the rollout itself failed them", killAt.Sub(during.FirstFailure).Seconds())
		}
		if end := exitAt.Add(proxyPoll); during.LastFailure.After(end) {
			t.Errorf("a request that began %.1fs after the deploy ended failed: want failures within the kill and the deploy's end (+%s, Traefik's poll)", during.LastFailure.Sub(exitAt).Seconds(), proxyPoll)
		}
	}
	if code == 2 {
		// Restored to v1: the next deploy, with the worker still down,
		// puts v2 on the surviving one.
		expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	}
	cl.waitVersion(t, "v2.0.0", time.Minute)
	if on := b.tasksByNode(t, "app"); on[lost.Name] != 0 || len(on) != 1 {
		t.Errorf("app's running tasks are on %v, want the surviving worker only", on)
	}

	// Rotation: a new certificate and key (of another CA), set, then
	// deploy:proxy; the proxy serves the new one.
	ca2, cert2, key2 := deploy.ThrowawayCertificate(t, host, time.Now().AddDate(0, 2, 0))
	for name, value := range map[string][]byte{"tls_certificate": cert2, "tls_key": key2} {
		if out, code := f.runTargetIn(t.Context(), b.env, nil, bytes.NewReader(value), "secrets:set", "e2e", name); code != 0 || !strings.Contains(out, "deploy:proxy e2e") {
			t.Fatalf("secrets:set e2e %s exited %d:\n%s", name, code, out)
		}
	}
	start = time.Now()
	out = expect(t, f, b.env, 0, "deploy:proxy", "e2e")
	if !strings.Contains(out, "tls_certificate v2 for "+host) || !strings.Contains(out, "key tls_key v2 matches") {
		t.Errorf("deploy:proxy does not move to version 2:\n%s", out)
	}
	pool2 := x509.NewCertPool()
	pool2.AppendCertsFromPEM(ca2)
	cl2 := &bedClient{url: cl.url, hc: bedHTTPClient(mgr, host, pool2)}
	fr.waitServed(t, cl2.hc, time.Minute)
	t.Logf("rotated: the new certificate served %s after deploy:proxy began", time.Since(start).Round(100*time.Millisecond))
	if err := get200(t.Context(), bedHTTPClient(mgr, host, pool), cl.url+"/ready"); err == nil {
		t.Error("the old certificate is still served after the rotation")
	}
}

// bedClient asks the app through the proxy on a bed's manager, as a user
// does: HTTPS to its address, the app's host name as SNI and Host.
type bedClient struct {
	url string // https://host:443
	hc  *http.Client
}

// bedHTTPClient dials the manager's address on the bed (only it) and
// trusts roots only.
func bedHTTPClient(mgr *swarmtest.Node, host string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	addr := net.JoinHostPort(mgr.Addr.String(), "443")
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
	}}
}

// handshake is the TLS state of a request to /ready.
func (c *bedClient) handshake(t *testing.T) *tls.ConnectionState {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.url+"/ready", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("no TLS state")
	}
	return resp.TLS
}

// waitVersion waits until ten answers of /version in a row report want.
func (c *bedClient) waitVersion(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline, inARow, last := time.Now().Add(timeout), 0, ""
	for inARow < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("/version through the proxy did not settle on %s within %s (last: %s)", want, timeout, last)
		}
		var v struct {
			Version string `json:"version"`
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.url+"/version", nil)
		resp, err := c.hc.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
		}
		switch {
		case err != nil:
			last, inARow = err.Error(), 0
		case v.Version != want:
			last, inARow = v.Version, 0
		default:
			inARow++
			continue
		}
		time.Sleep(500 * time.Millisecond)
	}
}
