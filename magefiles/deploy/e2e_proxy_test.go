package deploy_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/internal/loadgen"
)

// proxyImages pushes the Traefik and pebble images into the suite's
// registry (TRAEFIK_IMAGE and PEBBLE_IMAGE name them; .ci builds them
// where nothing can be pulled) and returns their references there.
func (f *fixture) proxyImages(t *testing.T) (traefik, pebble string) {
	t.Helper()
	src := map[string]string{
		"traefik": cmp.Or(os.Getenv("TRAEFIK_IMAGE"), "local/traefik:v3.6"),
		"pebble":  cmp.Or(os.Getenv("PEBBLE_IMAGE"), "local/pebble"),
	}
	for name, img := range src {
		if _, err := f.cli.ImageInspect(t.Context(), img); err != nil {
			dockertest.Missing(t, fmt.Sprintf("the proxy's tests need the image %s (%s_IMAGE; .ci/traefik.sh and .ci/pebble.sh build them)", img, strings.ToUpper(name)))
		}
	}
	traefik, pebble = f.registry+"/traefik:v3.6", f.registry+"/pebble:e2e"
	for ref, from := range map[string]string{traefik: src["traefik"], pebble: src["pebble"]} {
		if _, err := f.push(t.Context(), from, ref); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	return traefik, pebble
}

// front is the proxy of a test and a client reaching the app through it
// from this machine, as a user does: HTTPS to 127.0.0.1, the app's host
// name as SNI and Host, pebble's root trusted.
type front struct {
	f                               *fixture
	env                             string // the environments file
	cache                           string
	host                            string
	httpsPort, httpPort, pebblePort int
	traefik, pebble                 string
	stack                           string // the proxy's: e2e..., so that the suite's teardown removes its volume
}

// proxyYAML is the environment's proxy section, with more variables.
func (fr *front) proxyYAML(extra string) string {
	return fmt.Sprintf(`{ca: pebble, stack: %s, http_port: %d, https_port: %d, variables: {TRAEFIK_IMAGE: %q, PEBBLE_IMAGE: %q, PEBBLE_MANAGEMENT_PORT: "%d"%s}}`,
		fr.stack, fr.httpPort, fr.httpsPort, fr.traefik, fr.pebble, fr.pebblePort, extra)
}

// run runs a target with the test's cache, checking its exit code.
func (fr *front) run(t *testing.T, code int, args ...string) string {
	t.Helper()
	start := time.Now()
	out, got := fr.f.runTarget(t.Context(), fr.env, []string{"SERVICE_TEMPLATE_CACHE=" + fr.cache}, args...)
	t.Logf("%s: exit %d in %s", strings.Join(args, " "), got, time.Since(start).Round(100*time.Millisecond))
	if got != code {
		t.Fatalf("%s exited %d, want %d:\n%s", strings.Join(args, " "), got, code, out)
	}
	return out
}

// client trusts pebble's root as deploy:proxy kept it.
func (fr *front) client(t *testing.T) *http.Client {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(fr.cache, "pebble", "edge", "pebble-root.pem"))
	if err != nil {
		t.Fatalf("pebble's root, which deploy:proxy keeps: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatalf("no certificate in pebble's root file: %q", root)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(fr.httpsPort))
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: fr.host, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
	}}
}

func (fr *front) url(path string) string {
	return fmt.Sprintf("https://%s:%d%s", fr.host, fr.httpsPort, path)
}

// waitServed waits until /ready answers 200 through the proxy with a
// certificate from pebble.
func (fr *front) waitServed(t *testing.T, hc *http.Client, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < timeout {
		last = get200(t.Context(), hc, fr.url("/ready"))
		if last == nil {
			t.Logf("served over HTTPS through Traefik, with a certificate the client trusts, %s after the deploy", time.Since(start).Round(time.Second))
			return
		}
		time.Sleep(time.Second)
	}
	var logs strings.Builder
	for _, svc := range []string{fr.stack + "_traefik", fr.stack + "_pebble"} {
		out, _ := execOutput("docker", "service", "logs", "--raw", "--tail", "60", svc)
		fmt.Fprintf(&logs, "--- %s:\n%s\n", svc, out)
	}
	t.Fatalf("not served through the proxy within %s: %v\n%s", timeout, last, logs.String())
}

// checkRedirect asks for the app over plain HTTP: Traefik answers with a
// permanent redirect to the same path over HTTPS, never with the app.
func (fr *front) checkRedirect(t *testing.T) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	plain := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(fr.httpPort))
		}},
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("http://%s/v1/notes?limit=1", fr.host), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatalf("plain HTTP through the proxy: %v", err)
	}
	_ = resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("plain HTTP: %s, want a permanent redirect to HTTPS", resp.Status)
	}
	if !strings.HasPrefix(loc, "https://"+fr.host) || !strings.HasSuffix(loc, "/v1/notes?limit=1") {
		t.Errorf("plain HTTP redirects to %q, want https://%s[:port]/v1/notes?limit=1", loc, fr.host)
	}
}

func get200(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// measure sends reads and writes through the proxy, alternating, 4 at a
// time, for 10s when change is nil, else while it runs (from 2s before).
func (fr *front) measure(t *testing.T, hc *http.Client, change func()) loadgen.Result {
	t.Helper()
	var n atomic.Int64
	o := loadgen.Options{
		Concurrency: 4, Client: hc,
		Request: func(ctx context.Context) (*http.Request, error) {
			if n.Add(1)%2 == 0 {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, fr.url("/v1/notes"), strings.NewReader(`{"title":"through the proxy"}`))
				if err == nil {
					req.Header.Set("Content-Type", "application/json")
				}
				return req, err
			}
			return http.NewRequestWithContext(ctx, http.MethodGet, fr.url("/v1/notes?limit=5"), nil)
		},
		Check: func(resp *http.Response, body []byte) error {
			want := http.StatusOK
			if resp.Request.Method == http.MethodPost {
				want = http.StatusCreated
			}
			if resp.StatusCode != want {
				return fmt.Errorf("status %s: %.200s", resp.Status, body)
			}
			return nil
		},
	}
	if change == nil {
		o.Duration = 10 * time.Second
		res, err := loadgen.Run(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	done := make(chan loadgen.Result, 1)
	go func() {
		res, _ := loadgen.Run(ctx, o)
		done <- res
	}()
	time.Sleep(2 * time.Second)
	change()
	time.Sleep(2 * time.Second) // what the change's last moments did to clients
	stop()
	return <-done
}

// TestE2EProxyZeroDowntime deploys the front proxy with deploy:proxy (a
// pebble CA beside Traefik, as the local environment has it), then the
// production stack behind it with deploy:to, and measures from this
// machine, over HTTPS through Traefik's host ports on 127.0.0.1, what
// clients see during each change: a new release, a release whose health
// check fails (restored), scaling 2 -> 4 -> 1 -> 2, and an upgrade of the
// proxy itself (stop-first: its host ports are free for a moment).
// The routing mesh cannot be compared here: this kernel has no IPVS, so
// neither ingress-published ports nor VIPs route.
func TestE2EProxyZeroDowntime(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	fr := &front{f: f, cache: filepath.Join(f.tmp, "cache-"+unique()), httpsPort: freePort(), httpPort: freePort(), pebblePort: freePort(), stack: "e2eproxy" + unique()[:4]}
	fr.traefik, fr.pebble = f.proxyImages(t)
	stack := "e2ep" + unique()[:4]
	fr.host = stack + ".e2e.test"
	t.Cleanup(func() { f.removeStack(t, fr.stack) })
	write := func(extra string) {
		fr.env = newStackEnv(t, f, envSpec{Name: "edge", Stack: stack, Smoke: "{service: app}", Proxy: fr.proxyYAML(extra)})
	}
	f.createSecrets(t, stack, "pw"+unique())
	t.Cleanup(func() { f.removeStack(t, stack) })
	write("")

	// A stack behind a proxy that does not run yet is refused, pointing
	// at deploy:proxy; here traefik-public exists (the fixture made it),
	// so the refusal is checked by the unit tests and the dry run shows
	// the proxy's plan.
	out := fr.run(t, 0, "deploy:proxy", "edge", "-dryrun")
	for _, want := range []string{"Dry run: nothing was changed.", "service  traefik", "service  pebble", "ok    certificates", "ok    network    traefik-public exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not say %q:\n%s", want, out)
		}
	}
	out = fr.run(t, 0, "deploy:proxy", "edge")
	for _, want := range []string{"Proxy check: Traefik's /ping", "OK: http://tasks.traefik:8080/ping", "HTTPS answers on 127.0.0.1", "pebble's root"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy:proxy does not say %q:\n%s", want, out)
		}
	}
	if again := fr.run(t, 0, "deploy:proxy", "edge"); !strings.Contains(again, "Nothing to change") {
		t.Errorf("a second deploy:proxy changed something:\n%s", again)
	}
	deployed := time.Now()
	fr.run(t, 0, "deploy:to", "edge", "-image="+f.repo+":v1.0.0")
	hc := fr.client(t)
	fr.waitServed(t, hc, 3*time.Minute)
	t.Logf("first request served %s after deploy:to began", time.Since(deployed).Round(time.Second))
	fr.checkRedirect(t)

	type row struct {
		name           string
		before, during loadgen.Result
		note           string
	}
	var rows []row
	scenario := func(name string, change func() string) {
		t.Helper()
		before := fr.measure(t, hc, nil)
		note := ""
		during := fr.measure(t, hc, func() { note = change() })
		rows = append(rows, row{name, before, during, note})
	}
	scenario("v1 -> v2", func() string {
		fr.run(t, 0, "deploy:to", "edge", "-image="+f.repo+":v2.0.0")
		return ""
	})
	scenario("release failing its health check (restored)", func() string {
		out := fr.run(t, 2, "deploy:to", "edge", "-image="+f.repo+":bad")
		if !strings.Contains(out, "Restored") && !strings.Contains(out, "rolled") {
			t.Errorf("the failed release was not restored:\n%s", out)
		}
		return "exit 2"
	})
	scenario("scale 2 -> 4 -> 1 -> 2", func() string {
		for _, n := range []string{"4", "1", "2"} {
			fr.run(t, 0, "deploy:scale", "edge", "app", n)
		}
		return ""
	})
	if v := f.taskDigests(t, stack+"_app"); len(v) != 2 {
		t.Errorf("after the scales, %d tasks run, want 2", len(v))
	}
	onDigest(t, f, stack+"_app", f.digests["v2.0.0"])
	scenario("proxy upgrade (stop-first)", func() string {
		write(`, PROXY_LOG_LEVEL: "WARN"`) // a new task spec, as a new image would be
		fr.run(t, 0, "deploy:proxy", "edge")
		fr.waitServed(t, fr.client(t), 2*time.Minute)
		return ""
	})

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "change (HTTPS through Traefik, from 127.0.0.1)\trequests\tfailed\tfailures within\tp99 before\tp99 during\tmax during")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	for _, r := range rows {
		window := "-"
		if r.during.Failed > 0 {
			window = r.during.LastFailure.Sub(r.during.FirstFailure).Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.name, r.during.Sent, r.during.Failed, window,
			ms(r.before.Percentile(0.99)), ms(r.during.Percentile(0.99)), ms(r.during.Percentile(1)))
	}
	_ = tw.Flush()
	t.Logf("GET and POST /v1/notes alternating, 4 in flight, keep-alive; the routing mesh is not compared: this kernel has no IPVS\n%s", b.String())
	for _, r := range rows {
		if strings.HasPrefix(r.name, "proxy upgrade") {
			if w := r.during.LastFailure.Sub(r.during.FirstFailure); w > 30*time.Second {
				t.Errorf("%s: clients were refused for %s, want a window of seconds", r.name, w)
			}
			continue
		}
		if r.during.Failed > 0 || r.before.Failed > 0 {
			t.Errorf("%s: %d of %d requests failed: %q", r.name, r.during.Failed, r.during.Sent, r.during.Errors)
		}
	}
}

// newStackEnv writes a test's environments file.
func newStackEnv(t *testing.T, f *fixture, e envSpec) string {
	t.Helper()
	return f.writeEnv(t.Name()+"-"+unique()[:4], e)
}
