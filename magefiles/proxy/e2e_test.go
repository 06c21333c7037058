package proxy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/internal/loadgen"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/runner"
	"github.com/fractionate/service-template/magefiles/stack"
)

// DefaultPebbleImage is what .ci/pebble.sh builds; PEBBLE_IMAGE overrides it.
const DefaultPebbleImage = "local/pebble"

// The made-up host name the app is served under. Nothing resolves it: the
// test dials 127.0.0.1 and sends it as SNI and Host, and pebble finds
// Traefik under it through a network alias.
const appHost = "app.proxytest.test"

// e2e is what the test made and uses.
type e2e struct {
	cli         *client.Client
	dir         string // the pebble files
	env         []string
	httpPort    int
	httpsPort   int
	pebblePort  int
	roots       *x509.CertPool // pebble's issuing root, once fetched
	stacks      []string       // deployed, to remove
	databaseURL string
}

// TestE2EProxy runs deploy/proxy.yml on a single-node Swarm of its own with
// pebble as the ACME CA, and the app stack behind it, and checks from the
// host, through the ports Traefik publishes on 127.0.0.1: HTTPS answers
// with a certificate pebble issued for the app's host name, HTTP redirects
// to HTTPS, and a v1 -> v2 rolling update of the app under load (reads and
// writes over HTTPS) fails no request. It prints requests, failures and
// p99 before and during the update.
//
// It makes the engine a Swarm for a few minutes and leaves it afterwards,
// so it runs only with TEST_SWARM=1, in the end-to-end suite (one package
// at a time). It needs the Traefik and pebble images: .ci/traefik.sh and
// .ci/pebble.sh build them where nothing can be pulled (TRAEFIK_IMAGE and
// PEBBLE_IMAGE name them).
func TestE2EProxy(t *testing.T) {
	if testing.Short() {
		// plain skip: -short asks for the unit tests only.
		t.Skip("end-to-end test: skipped in -short mode")
	}
	if os.Getenv("TEST_SWARM") != "1" {
		// plain skip: TEST_SWARM unset is the caller's explicit opt-out (the
		// test makes the engine a Swarm for minutes), not Docker missing.
		t.Skip("set TEST_SWARM=1 to let this test make the engine a single-node Swarm for a few minutes (it leaves it afterwards)")
	}
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-90*time.Second))
		t.Cleanup(cancel)
	}
	f := newE2E(t, ctx)

	// The proxy, its CA, and the app behind it.
	f.deploy(t, ctx, "proxytest-acme", "testdata/pebble.yml")
	f.deploy(t, ctx, "proxytest-proxy", "../../"+File, "../../"+ACMEFile, "testdata/proxy-test.yml")
	f.deploy(t, ctx, "proxytest-app", "testdata/app.yml", "testdata/app-test.yml")

	f.roots = f.pebbleRoots(t, ctx)
	hc := f.client()
	waitServed(t, ctx, f, hc, 4*time.Minute) // /ready: Postgres answers too
	f.migrate(t, ctx, "localhost/proxy-test:v1", f.databaseURL)

	t.Run("HTTPS with a certificate pebble issued for the host name", func(t *testing.T) {
		state := f.handshake(t, ctx)
		leaf := state.PeerCertificates[0]
		if err := leaf.VerifyHostname(appHost); err != nil {
			t.Errorf("certificate for %v: %v", leaf.DNSNames, err)
		}
		if len(state.VerifiedChains) == 0 {
			t.Fatal("the chain was not verified against pebble's root")
		}
		t.Logf("certificate for %v issued by %q, valid until %s", leaf.DNSNames, leaf.Issuer.CommonName, leaf.NotAfter.Format(time.DateOnly))
	})

	t.Run("HTTP redirects to HTTPS", func(t *testing.T) {
		noFollow := &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{DialContext: dialTo(f.httpPort)},
		}
		resp, _, err := fetch(ctx, noFollow, fmt.Sprintf("http://%s/v1/notes?limit=1", appHost))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("https://%s:%d/v1/notes?limit=1", appHost, f.httpsPort)
		if resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusPermanentRedirect {
			t.Errorf("status %s, want a permanent redirect", resp.Status)
		}
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
	})

	t.Run("a rolling update under load loses no request", func(t *testing.T) {
		before := f.load(t, ctx, hc, 15*time.Second, nil)
		update := func(ctx context.Context) {
			prev := serviceState(t, ctx, f.cli, "proxytest-app_app")
			f.env = append(f.env, "IMAGE_TAG=v2")
			f.deploy(t, ctx, "proxytest-app", "testdata/app.yml", "testdata/app-test.yml")
			waitUpdated(t, ctx, f.cli, "proxytest-app_app", prev, 5*time.Minute)
			time.Sleep(5 * time.Second) // the last old task drains
		}
		during := f.load(t, ctx, hc, 0, update)
		if v := version(t, ctx, hc, f.url("/version")); v != "v2.0.0" {
			t.Errorf("after the update /version says %q, want v2.0.0", v)
		}
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "through Traefik, HTTPS\trequests\tfailed\treq/s\tp50\tp99\tmax")
		for _, r := range []struct {
			name string
			res  loadgen.Result
		}{{"before (steady)", before}, {"during v1 -> v2", during}} {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\n", r.name, r.res.Sent, r.res.Failed, r.res.RPS(),
				r.res.Percentile(0.5).Round(100*time.Microsecond), r.res.Percentile(0.99).Round(100*time.Microsecond), r.res.Percentile(1).Round(100*time.Microsecond))
		}
		_ = tw.Flush()
		t.Logf("GET /v1/notes and POST /v1/notes alternating, 4 in flight, keep-alive:\n%s", b.String())
		for _, r := range []loadgen.Result{before, during} {
			if r.Failed > 0 {
				t.Errorf("%d of %d requests failed: %q", r.Failed, r.Sent, r.Errors)
			}
		}
	})

	// Traefik holds the host's ports, so a new Traefik task can only start
	// once the old one let go of them (stop-first): an upgrade of the proxy
	// leaves the node without a listener for a moment. The certificate
	// survives it, from acme.json on the volume, without a new order.
	t.Run("a proxy upgrade: a short window, the certificate kept", func(t *testing.T) {
		serial := f.handshake(t, ctx).PeerCertificates[0].SerialNumber
		upgrade := func(ctx context.Context) {
			prev := serviceState(t, ctx, f.cli, "proxytest-proxy_traefik")
			f.env = append(f.env, "PROXY_LOG_LEVEL=WARN") // a new task spec, as a new image would be
			f.deploy(t, ctx, "proxytest-proxy", "../../"+File, "../../"+ACMEFile, "testdata/proxy-test.yml")
			waitUpdated(t, ctx, f.cli, "proxytest-proxy_traefik", prev, 3*time.Minute)
			waitServed(t, ctx, f, f.client(), 2*time.Minute)
			time.Sleep(3 * time.Second)
		}
		res := f.load(t, ctx, f.client(), 0, upgrade)
		window := res.LastFailure.Sub(res.FirstFailure)
		t.Logf("proxy upgrade under load: %d requests, %d failed, all within %s (first %s, last %s); p99 %s",
			res.Sent, res.Failed, window.Round(10*time.Millisecond), res.FirstFailure.Format("15:04:05.000"),
			res.LastFailure.Format("15:04:05.000"), res.Percentile(0.99).Round(100*time.Microsecond))
		if window > 30*time.Second {
			t.Errorf("clients were refused for %s; want a window of seconds", window)
		}
		if got := f.handshake(t, ctx).PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
			t.Errorf("after the upgrade the certificate is serial %s, want the same %s: acme.json was not kept", got, serial)
		}
	})
}

// newE2E checks what the test needs, makes the Swarm, the shared network,
// the app's images and secrets, and pebble's files, and registers their
// removal.
func newE2E(t *testing.T, ctx context.Context) *e2e {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		dockertest.Missing(t, "needs the docker CLI for docker stack deploy: "+err.Error())
	}
	cli, err := dockerimage.NewClient()
	if err != nil {
		dockertest.Missing(t, "needs a Docker engine: "+err.Error())
	}
	t.Cleanup(func() { cli.Close() })
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		dockertest.Missing(t, "needs a Docker engine: "+err.Error())
	}
	if state := info.Info.Swarm.LocalNodeState; state != swarm.LocalNodeStateInactive {
		dockertest.Missing(t, fmt.Sprintf("the engine is in a Swarm already (%s): this test only uses a Swarm of its own", state))
	}
	p, err := stack.Load(ctx, "proxy", map[string]string{"ACME_EMAIL": "x@example.com"}, "../../"+File, "../../"+ACMEFile)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{
		"TRAEFIK_IMAGE":  cmp.Or(os.Getenv("TRAEFIK_IMAGE"), p.Services[Service].Image),
		"PEBBLE_IMAGE":   cmp.Or(os.Getenv("PEBBLE_IMAGE"), DefaultPebbleImage),
		"POSTGRES_IMAGE": cmp.Or(os.Getenv("POSTGRES_IMAGE"), "postgres:16-alpine"),
	}
	for name, image := range images {
		if _, err := cli.ImageInspect(ctx, image); err != nil {
			dockertest.Missing(t, fmt.Sprintf("image %s (%s) is not in the engine: pull it, or build it (.ci/traefik.sh, .ci/pebble.sh) and set %s", image, name, name))
		}
	}

	f := &e2e{cli: cli, dir: t.TempDir(), httpPort: dockertest.FreePort(t), httpsPort: dockertest.FreePort(t), pebblePort: dockertest.FreePort(t)}
	f.env = []string{
		"ACME_EMAIL=ops@proxytest.test", "ACME_CA_SERVER=https://pebble:14000/dir",
		"PROXY_HTTP_PORT=" + strconv.Itoa(f.httpPort), "PROXY_HTTPS_PORT=" + strconv.Itoa(f.httpsPort),
		"PEBBLE_MANAGEMENT_PORT=" + strconv.Itoa(f.pebblePort), "PEBBLE_DIR=" + f.dir,
		"APP_HOST=" + appHost, "ROUTER=proxytest", "REGISTRY=localhost", "IMAGE_NAME=proxy-test", "IMAGE_TAG=v1",
		"APP_ENV=production",
	}
	for name, image := range images {
		f.env = append(f.env, name+"="+image)
	}
	writePebbleFiles(t, f.dir)

	// Removed last: the Swarm, then the network, the secrets and images.
	gwBridge := networkExists(t, ctx, cli, "docker_gwbridge")
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, err := cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: leave the Swarm: %v", err)
		}
		if !gwBridge { // swarm init makes it and leaving keeps it
			if _, err := cli.NetworkRemove(ctx, "docker_gwbridge", client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Logf("cleanup: remove docker_gwbridge: %v", err)
			}
		}
	})
	made, err := cli.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"})
	if err != nil {
		t.Fatalf("swarm init: %v", err)
	}
	node, err := cli.NodeInspect(ctx, made.NodeID, client.NodeInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := node.Node.Spec
	spec.Labels = map[string]string{CertificatesLabel: "true"}
	if _, err := cli.NodeUpdate(ctx, made.NodeID, client.NodeUpdateOptions{Version: node.Node.Version, Spec: spec}); err != nil {
		t.Fatalf("label the node: %v", err)
	}
	if _, err := cli.NetworkCreate(ctx, Network, client.NetworkCreateOptions{Driver: "overlay", Attachable: true}); err != nil {
		t.Fatalf("create %s: %v", Network, err)
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, err := cli.NetworkRemove(ctx, Network, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("cleanup: remove %s: %v", Network, err)
		}
	})
	password := "pw" + dockertest.Unique(t)
	f.databaseURL = "postgres://app:" + password + "@postgres:5432/app?sslmode=disable"
	for name, value := range map[string]string{"postgres_password": password, "database_url": f.databaseURL} {
		if _, err := cli.SecretCreate(ctx, client.SecretCreateOptions{Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: name}, Data: []byte(value)}}); err != nil {
			t.Fatalf("create secret %s: %v", name, err)
		}
	}
	f.buildApp(t, ctx, "v1", "v2")
	return f
}

// buildApp builds the service's image with the repository's own tooling,
// once per tag, each stamped with its version (v1 -> v1.0.0).
func (f *e2e) buildApp(t *testing.T, ctx context.Context, tags ...string) {
	t.Helper()
	dir := t.TempDir()
	if err := dockerimage.CopyRepo(ctx, "../..", dir); err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		var out bytes.Buffer
		b, err := dockerimage.BuildImage(ctx, runner.Exec{Quiet: true, Stderr: &out}, f.cli, dockerimage.Plan{
			Dir: dir, Repository: "localhost/proxy-test", Tags: []string{tag}, Out: &out,
			Stamp: dockerimage.Stamp{Version: tag + ".0.0", Commit: "test", Title: "proxy-test"},
		})
		if err != nil {
			t.Fatalf("build the app image %s: %v\n%s", tag, err, out.String())
		}
		t.Cleanup(func() {
			ctx, cancel := cleanupContext()
			defer cancel()
			if _, err := f.cli.ImageRemove(ctx, b.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("cleanup: remove image %s: %v", b.ID, err)
			}
		})
	}
}

// deploy runs docker stack deploy with the test's variables, and registers
// the stack's removal the first time.
func (f *e2e) deploy(t *testing.T, ctx context.Context, name string, files ...string) {
	t.Helper()
	args := []string{"stack", "deploy", "--resolve-image", "never"}
	for _, file := range files {
		args = append(args, "-c", file)
	}
	if !slices.Contains(f.stacks, name) {
		f.stacks = append(f.stacks, name)
		t.Cleanup(func() { dockertest.RemoveStack(t, f.cli, name) })
	}
	if _, err := runner.Output(ctx, runner.Command("docker", append(args, name)...).WithEnv(f.env...)); err != nil {
		t.Fatal(err)
	}
}
