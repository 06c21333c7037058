package dockerimage

// Tests against the real engine, named TestIntegration...: they skip, saying
// why, when no engine answers or under -short (internal/dockertest);
// whatever they create (images, containers, registries) is removed in
// t.Cleanup. They build from a temporary copy of the repository and never
// write into the real tree.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/magefiles/runner"

	"github.com/fractionate/service-template/internal/secret"
)

// engine returns a client of the local engine. Without one the test skips
// (or fails under TEST_REQUIRE_DOCKER=1): the project's rule, dockertest.
func engine(t *testing.T) *client.Client {
	t.Helper()
	dockertest.Require(t)
	cli, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// repoCopy copies the repository (git-tracked and unignored files) into a
// temporary directory: the tests change and build the copy.
func repoCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := CopyRepo(context.Background(), repoRoot(t), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testStamp is unique per test, so each test's image has its own ID.
func testStamp(u string) Stamp {
	return Stamp{
		Version: "v0.0.0-test." + u,
		Commit:  "c0ffee" + u,
		Created: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Source:  "https://github.com/fractionate/service-template",
		Title:   "service-template",
	}
}

// removeImage removes refs and then the image itself, ignoring what is
// already gone. Only names and the ID of this test's own image are used.
func removeImage(t *testing.T, cli *client.Client, id string, refs ...string) {
	t.Helper()
	ctx := context.Background()
	for _, r := range refs {
		if _, err := cli.ImageRemove(ctx, r, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove %s: %v", r, err)
		}
	}
	if id != "" {
		if _, err := cli.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true, Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove %s: %v", id, err)
		}
	}
}

// removeIntermediates removes, when the test ends, the step images a build
// created. The classic builder keeps them as cache when a build fails, and
// keeps those of stages the final image does not descend from (the builder
// stage, and prebuilt when building runtime).
func removeIntermediates(t *testing.T, cli *client.Client, out *bytes.Buffer) {
	t.Cleanup(func() {
		ids := createdStepImages(out.String())
		for i := len(ids) - 1; i >= 0; i-- { // children before parents
			_, err := cli.ImageRemove(context.Background(), ids[i], client.ImageRemoveOptions{PruneChildren: true})
			if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
				t.Errorf("cleanup: remove %s: %v", ids[i], err)
			}
		}
	})
}

// createdStepImages reads the classic builder's output for the images its
// steps created: not a FROM step's base image, not a cache hit, which
// belong to someone else.
func createdStepImages(out string) []string {
	stepID := regexp.MustCompile(`^ ---> ([0-9a-f]{12})$`)
	var ids []string
	var from, cached bool
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "Step "):
			_, instr, _ := strings.Cut(line, " : ")
			from, cached = strings.HasPrefix(strings.ToUpper(instr), "FROM "), false
		case line == " ---> Using cache":
			cached = true
		default:
			if m := stepID.FindStringSubmatch(line); m != nil && !from && !cached {
				ids = append(ids, m[1])
			}
		}
	}
	return ids
}

// buildTestImage builds the prebuilt target of dir (host go build of the
// real ./app, then the engine) and removes the image when the test ends.
func buildTestImage(t *testing.T, cli *client.Client, dir, repository string, tags []string, stamp Stamp) Built {
	t.Helper()
	t.Cleanup(func() { removeImage(t, cli, "", Refs(repository, tags)...) })
	var out bytes.Buffer
	b, err := BuildImage(context.Background(), runner.Exec{Quiet: true, Stderr: &out}, cli, Plan{
		Dir: dir, Repository: repository, Tags: tags, Stamp: stamp, Out: &out,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { removeImage(t, cli, b.ID) })
	return b
}

func TestIntegrationImageRunsLockedDown(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	stamp := testStamp(u)
	b := buildTestImage(t, cli, repoCopy(t), "localhost/dockerimage-test", []string{"run-" + u}, stamp)

	img, err := cli.ImageInspect(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	cfg := img.Config
	if cfg.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/app"}) || !slices.Equal(cfg.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("exposed ports = %v", cfg.ExposedPorts)
	}
	hc := cfg.Healthcheck
	if hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/app", "healthcheck"}) || hc.Interval == 0 || hc.Timeout == 0 || hc.StartPeriod == 0 || hc.Retries == 0 {
		t.Errorf("healthcheck = %+v, want exec form /app healthcheck with interval, timeout, start period, retries", hc)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.revision": stamp.Commit,
		"org.opencontainers.image.version":  stamp.Version,
		"org.opencontainers.image.created":  "2024-05-06T07:08:09Z",
		"org.opencontainers.image.source":   stamp.Source,
		"org.opencontainers.image.title":    stamp.Title,
	}
	for k, v := range wantLabels {
		if got := cfg.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if n := len(img.RootFS.Layers); n != 1 {
		t.Errorf("image has %d layers, want 1 (the binary)", n)
	}

	// Run it locked down, published on loopback only, with an unreachable database.
	port := network.MustParsePort("8080/tcp")
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:  "dockerimage-test-" + u,
		Image: b.ID,
		Config: &container.Config{
			Env: []string{"APP_ENV=production", "DATABASE_URL=postgres://u:p@127.0.0.1:1/db"},
		},
		HostConfig: &container.HostConfig{
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges"},
			PortBindings:   network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: remove container: %v", err)
		}
	})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	logs := func() string {
		rc, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			return err.Error()
		}
		defer rc.Close()
		var o bytes.Buffer
		_, _ = stdcopy.StdCopy(&o, &o, rc)
		return o.String()
	}
	ins, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindings := ins.Container.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		t.Fatalf("port 8080 not published; logs:\n%s", logs())
	}
	for _, pb := range bindings {
		if pb.HostIP.String() != "127.0.0.1" {
			t.Errorf("published on %s, want 127.0.0.1 only", pb.HostIP)
		}
	}
	base := "http://127.0.0.1:" + bindings[0].HostPort

	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /health: %v; logs:\n%s", err, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var health struct{ Status string }
	if err := json.Unmarshal(body, &health); err != nil || health.Status != "ok" {
		t.Errorf("/health body = %s", body)
	}

	resp, err := http.Get(base + "/version")
	if err != nil {
		t.Fatal(err)
	}
	// The stamp's fields; /version says more (the schema) than this test reads.
	var version struct{ Version, Commit, Date string }
	err = json.NewDecoder(resp.Body).Decode(&version)
	resp.Body.Close()
	if err != nil || version.Version != stamp.Version || version.Commit != stamp.Commit || version.Date != "2024-05-06T07:08:09Z" {
		t.Errorf("/version = %+v (%v), want the stamp %+v", version, err, stamp)
	}

	// The engine runs the image's own HEALTHCHECK.
	deadline = time.Now().Add(time.Duration(hc.Retries+2)*hc.Interval + hc.StartPeriod)
	for {
		ins, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st := ins.Container.State
		if st.Health != nil && st.Health.Status == container.Healthy {
			break
		}
		if !st.Running || (st.Health != nil && st.Health.Status == container.Unhealthy) || time.Now().After(deadline) {
			var probes []string
			if st.Health != nil {
				for _, l := range st.Health.Log {
					probes = append(probes, fmt.Sprintf("exit %d: %s", l.ExitCode, l.Output))
				}
			}
			t.Fatalf("health = %+v, running %v; probes %q; logs:\n%s", st.Health, st.Running, probes, logs())
		}
		time.Sleep(time.Second)
	}
}

func TestIntegrationImageHoldsNoSecrets(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	canary := "CANARY-" + u + "-do-not-ship"
	dir := repoCopy(t)
	writeTree(t, dir, map[string]string{
		".env":                                   "DATABASE_URL=postgres://app:" + canary + "@db/app\n",
		"app/.env.local":                         "API_TOKEN=" + canary + "\n",
		"secrets/deploy-key.pem":                 canary,
		"bin/other/token":                        canary,
		"app/internal/config/testdata/leak.json": `{"password":"` + canary + `"}`,
	})

	b := buildTestImage(t, cli, dir, "localhost/dockerimage-test", []string{"secrets-" + u}, testStamp(u))

	// Nothing of it even reaches the engine.
	rc, err := Context(dir, TargetPrebuilt)
	if err != nil {
		t.Fatal(err)
	}
	ctxFiles, err := scanTar(rc, canary)
	rc.Close()
	if err != nil {
		t.Errorf("build context: %v", err)
	}
	if !slices.Contains(ctxFiles, HostBinary) {
		t.Fatalf("the context scan saw no %s; saw %q", HostBinary, ctxFiles)
	}

	saved, err := cli.ImageSave(ctx, []string{b.ID})
	if err != nil {
		t.Fatal(err)
	}
	files, err := scanTar(saved, canary)
	saved.Close()
	if err != nil {
		t.Errorf("docker save of the image: %v", err)
	}
	// The scan went into the layers (and found only the binary there).
	var inLayers []string
	for _, f := range files {
		if _, inner, ok := strings.Cut(f, "!"); ok {
			inLayers = append(inLayers, inner)
		}
	}
	if !slices.Equal(inLayers, []string{"app"}) {
		t.Errorf("files in the image's layers = %q, want only app", inLayers)
	}

	hist, err := cli.ImageHistory(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := json.Marshal(hist.Items)
	if bytes.Contains(h, []byte(canary)) {
		t.Errorf("the canary is in the image history: %s", h)
	}
	var raw bytes.Buffer
	if _, err := cli.ImageInspect(ctx, b.ID, client.ImageInspectWithRawResponse(&raw)); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Bytes(), []byte(canary)) {
		t.Errorf("the canary is in the image's configuration: %s", raw.String())
	}
}

// scanTar reads a tar stream, descending into tar (and gzipped tar) members,
// and fails if needle appears in any name or content. It returns the names
// of the regular files, nested ones as outer!inner.
func scanTar(r io.Reader, needle string) ([]string, error) {
	var names []string
	var found []string
	var walk func(r io.Reader, prefix string) error
	walk = func(r io.Reader, prefix string) error {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if strings.Contains(h.Name, needle) || strings.Contains(h.Linkname, needle) {
				found = append(found, prefix+h.Name+" (name)")
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			names = append(names, prefix+h.Name)
			if bytes.Contains(data, []byte(needle)) {
				found = append(found, prefix+h.Name)
			}
			if prefix != "" {
				continue // layers do not nest further
			}
			if gz, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				if inner, err := io.ReadAll(gz); err == nil {
					data = inner
				}
			}
			if _, err := tar.NewReader(bytes.NewReader(data)).Next(); err == nil {
				if err := walk(bytes.NewReader(data), h.Name+"!"); err != nil {
					return fmt.Errorf("%s: %w", h.Name, err)
				}
			}
		}
	}
	if err := walk(r, ""); err != nil {
		return names, err
	}
	if len(found) > 0 {
		return names, fmt.Errorf("the canary is in %q", found)
	}
	return names, nil
}

// startRegistry runs go-containerregistry's registry in-process on
// 127.0.0.1, wrapped in mw, and returns its host:port.
func startRegistry(t *testing.T, mw func(http.Handler) http.Handler) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if mw != nil {
		h = mw(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestIntegrationPushAndPullBackByDigest(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	host := startRegistry(t, nil)
	repository, err := ImageName(host, "Fractionate/Service-Template", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tags := []string{u[:7], "main", "latest"}
	b := buildTestImage(t, cli, repoCopy(t), repository, tags, testStamp(u))

	var out bytes.Buffer
	pushed, err := Push(ctx, cli, b.Refs, Credentials{}, &out)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	if len(pushed) != len(tags) {
		t.Fatalf("pushed %v, want %d tags", pushed, len(tags))
	}
	digest := pushed[0].Digest
	for i, p := range pushed {
		if p.Ref != b.Refs[i] || p.Digest != digest || p.String() != b.Refs[i]+"@"+digest {
			t.Errorf("pushed[%d] = %s, want %s@%s", i, p, b.Refs[i], digest)
		}
	}

	// The registry agrees: every tag resolves to the one digest.
	for _, r := range b.Refs {
		ref, err := name.ParseReference(r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("registry: %s: %v", r, err)
		}
		if desc.Digest.String() != digest {
			t.Errorf("registry: %s is at %s, want %s", r, desc.Digest, digest)
		}
	}

	pullBackByDigest(t, cli, b, repository+"@"+digest)
}

// pullBackByDigest forgets the built image locally, pulls byDigest and
// checks the engine has the same image again.
func pullBackByDigest(t *testing.T, cli *client.Client, b Built, byDigest string) {
	t.Helper()
	ctx := context.Background()
	removeImage(t, cli, "", b.Refs...)
	if _, err := cli.ImageInspect(ctx, b.ID); !cerrdefs.IsNotFound(err) {
		t.Fatalf("image still present after removing its tags (err %v)", err)
	}
	t.Cleanup(func() { removeImage(t, cli, "", byDigest) })
	pull, err := cli.ImagePull(ctx, byDigest, client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = readStream(pull, io.Discard, nil)
	pull.Close()
	if err != nil {
		t.Fatalf("pull %s: %v", byDigest, err)
	}
	img, err := cli.ImageInspect(ctx, byDigest)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != b.ID {
		t.Errorf("pulled %s, want the built %s", img.ID, b.ID)
	}
}

// basicAuth demands user:pass, as a registry with logins does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test-registry"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestIntegrationPushRefusedWithWrongPassword(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	right, wrong := "right-"+u, "WRONG-canary-"+u
	host := startRegistry(t, basicAuth("ci", right))
	repository := host + "/acme/api"
	b := buildTestImage(t, cli, repoCopy(t), repository, []string{"a-" + u, "b-" + u}, testStamp(u))

	var out bytes.Buffer
	pushed, err := Push(ctx, cli, b.Refs, Credentials{Username: "ci", Password: secret.New(wrong), Source: "REGISTRY_USERNAME/REGISTRY_PASSWORD"}, &out)
	if err == nil {
		t.Fatalf("push with a wrong password succeeded: %v", pushed)
	}
	msg := err.Error()
	t.Logf("refused: %v\n%s", err, out.String())
	if !strings.Contains(msg, "push "+b.Refs[0]+": ") || !strings.Contains(strings.ToLower(msg), "unauthorized") {
		t.Errorf("error = %q, want it to name %s and say unauthorized", msg, b.Refs[0])
	}
	if strings.Contains(msg+out.String(), wrong) {
		t.Errorf("the password appears in the error or output:\n%s\n%s", msg, out.String())
	}
	if len(pushed) != 0 {
		t.Errorf("pushed = %v, want nothing", pushed)
	}

	// The right password goes through the same path.
	out.Reset()
	if _, err := Push(ctx, cli, b.Refs, Credentials{Username: "ci", Password: secret.New(right), Source: "test"}, &out); err != nil {
		t.Fatalf("push with the right password: %v\n%s", err, out.String())
	}
}

// immutableTags refuses, like registries with immutable tags do, to point
// an existing tag at anything new.
func immutableTags(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, ref, isManifest := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
		if r.Method == http.MethodPut && isManifest && !strings.HasPrefix(ref, "sha256:") {
			probe := httptest.NewRecorder()
			head := httptest.NewRequest(http.MethodHead, r.URL.Path, nil)
			head.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
			next.ServeHTTP(probe, head)
			if probe.Code == http.StatusOK {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"errors":[{"code":"TAG_INVALID","message":"tag is immutable: %s:%s already exists"}]}`, repo, ref)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func TestIntegrationPushRefusedImmutableTag(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	host := startRegistry(t, immutableTags)
	repository := host + "/acme/api"
	tags := []string{"v1.0.0", "v1.0"}
	dir := repoCopy(t)

	first := buildTestImage(t, cli, dir, repository, tags, testStamp(u))
	var out bytes.Buffer
	pushed, err := Push(ctx, cli, first.Refs, Credentials{}, &out)
	if err != nil {
		t.Fatalf("first push: %v\n%s", err, out.String())
	}

	// Another image under the same tags.
	second := buildTestImage(t, cli, dir, repository, tags, testStamp(u+"-2"))
	if second.ID == first.ID {
		t.Fatal("the second build gave the same image")
	}
	out.Reset()
	_, err = Push(ctx, cli, second.Refs, Credentials{}, &out)
	if err == nil {
		t.Fatal("overwriting an immutable tag succeeded")
	}
	t.Logf("refused: %v", err)
	if msg := err.Error(); !strings.Contains(msg, "push "+second.Refs[0]+": ") || !strings.Contains(msg, "tag is immutable") {
		t.Errorf("error = %q, want it to name %s and quote the registry", msg, second.Refs[0])
	}
	ref, _ := name.ParseReference(first.Refs[0], name.Insecure)
	if desc, err := remote.Head(ref, remote.WithContext(ctx)); err != nil || desc.Digest.String() != pushed[0].Digest {
		t.Errorf("registry: %s now at %v (%v), want unchanged %s", first.Refs[0], desc, err, pushed[0].Digest)
	}
}

func TestIntegrationPushUnreachableRegistry(t *testing.T) {
	cli := engine(t)
	u := dockertest.Unique(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	b := buildTestImage(t, cli, repoCopy(t), host+"/acme/api", []string{"t-" + u}, testStamp(u))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	_, err = Push(ctx, cli, b.Refs, Credentials{}, &out)
	if err == nil {
		t.Fatal("push to a closed port succeeded")
	}
	t.Logf("refused: %v", err)
	if msg := err.Error(); !strings.Contains(msg, "push "+b.Refs[0]+": ") || !strings.Contains(msg, "connection refused") {
		t.Errorf("error = %q, want it to name %s and say connection refused", msg, b.Refs[0])
	}
}

func TestIntegrationBuildUnknownTargetTagsNothing(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	dir := repoCopy(t)
	repository := "localhost/dockerimage-test"
	tags := []string{"unknown-" + u}
	t.Cleanup(func() { removeImage(t, cli, "", Refs(repository, tags)...) })
	_, err := BuildImage(ctx, runner.Exec{Quiet: true}, cli, Plan{Dir: dir, Target: "debug", Repository: repository, Tags: tags, Stamp: testStamp(u)})
	if err == nil || !strings.Contains(err.Error(), `unknown build target "debug"`) || !strings.Contains(err.Error(), "prebuilt, builder, runtime") {
		t.Fatalf("err = %v, want unknown build target naming the stages", err)
	}
	if _, err := cli.ImageInspect(ctx, Refs(repository, tags)[0]); !cerrdefs.IsNotFound(err) {
		t.Errorf("%s exists after the failed build (err %v)", Refs(repository, tags)[0], err)
	}
	if _, err := os.Stat(filepath.Join(dir, HostBinary)); err == nil {
		t.Error("the host binary was built for an unknown target")
	}
}

// The engine's own build errors come back verbatim: a Dockerfile step that
// fails (here: the prebuilt stage without its binary).
func TestIntegrationBuildErrorVerbatim(t *testing.T) {
	cli := engine(t)
	u := dockertest.Unique(t)
	dir := repoCopy(t)
	repository := "localhost/dockerimage-test"
	tags := []string{"broken-" + u}
	t.Cleanup(func() { removeImage(t, cli, "", Refs(repository, tags)...) })
	// A Dockerfile whose last step fails in the engine.
	df, err := os.ReadFile(filepath.Join(dir, Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(df), "COPY bin/image/app /app\n", "COPY bin/image/app /app\nCOPY does-not-exist /nope\n", 1)
	writeTree(t, dir, map[string]string{Dockerfile: broken, HostBinary: "not really a binary"})
	var out bytes.Buffer
	removeIntermediates(t, cli, &out)
	_, err = Build(context.Background(), cli, BuildOptions{Dir: dir, Repository: repository, Tags: tags, Stamp: testStamp(u), Out: &out})
	if err == nil || !strings.Contains(err.Error(), "does-not-exist") {
		t.Fatalf("err = %v, want the builder's message about does-not-exist\n%s", err, out.String())
	}
	var ee *EngineError
	if !errors.As(err, &ee) {
		t.Errorf("err = %#v, want an *EngineError inside", err)
	}
	if _, err := cli.ImageInspect(context.Background(), Refs(repository, tags)[0]); !cerrdefs.IsNotFound(err) {
		t.Errorf("the failed build tagged %s (err %v)", Refs(repository, tags)[0], err)
	}
	if !strings.Contains(out.String(), "COPY does-not-exist /nope") {
		t.Errorf("progress lacks the failing step:\n%s", out.String())
	}
}

// The runtime target (compiled in the builder stage) gives the same runtime
// image as prebuilt. It needs a golang builder image, which cannot be
// pulled here: set DOCKERIMAGE_TEST_BUILDER_IMAGE to a local one (any image
// with Go on PATH and a module proxy it can reach).
func TestIntegrationRuntimeTargetMatchesPrebuilt(t *testing.T) {
	builder := os.Getenv("DOCKERIMAGE_TEST_BUILDER_IMAGE")
	if builder == "" {
		// plain skip: an explicit opt-in, like TEST_SWARM: without the
		// variable there is no image to build with, whatever the engine; CI sets it.
		t.Skip("skipping: set DOCKERIMAGE_TEST_BUILDER_IMAGE to a local golang image to build the runtime target")
	}
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	dir := repoCopy(t)
	stamp := testStamp(u)
	repository := "localhost/dockerimage-test"
	pre := buildTestImage(t, cli, dir, repository, []string{"pre-" + u}, stamp)

	tags := []string{"runtime-" + u}
	var out bytes.Buffer
	removeIntermediates(t, cli, &out) // runs after the image's own removal
	t.Cleanup(func() { removeImage(t, cli, "", Refs(repository, tags)...) })
	run, err := BuildImage(ctx, runner.Exec{Quiet: true}, cli, Plan{
		Dir: dir, Target: TargetRuntime, Repository: repository, Tags: tags, Stamp: stamp,
		BuildArgs: map[string]string{"BUILDER_IMAGE": builder}, Out: &out,
	})
	if err != nil {
		t.Fatalf("build runtime: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { removeImage(t, cli, run.ID) })

	a, err := cli.ImageInspect(ctx, pre.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cli.ImageInspect(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a.Config)
	jb, _ := json.Marshal(b.Config)
	if !bytes.Equal(ja, jb) {
		t.Errorf("image configurations differ:\nprebuilt %s\nruntime  %s", ja, jb)
	}
	if len(a.RootFS.Layers) != 1 || len(b.RootFS.Layers) != 1 {
		t.Errorf("layers: prebuilt %d, runtime %d; want 1 each", len(a.RootFS.Layers), len(b.RootFS.Layers))
	}
	// Same bytes, and so the same image digest, when the builder has the
	// host's Go release. Official golang images, and CI's stand-in, name
	// their release in GOLANG_VERSION.
	same := appSum(t, cli, pre.ID) == appSum(t, cli, run.ID)
	bi, err := cli.ImageInspect(ctx, builder)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(runtime.Version(), "go")
	switch builderGo := envValue(bi.Config.Env, "GOLANG_VERSION"); {
	case builderGo == host && !same:
		t.Errorf("the builder has Go %s like the host, yet /app differs between runtime and prebuilt: the build is not reproducible", host)
	case builderGo == host && (pre.Digest != run.Digest || pre.ID != run.ID):
		t.Errorf("same /app, yet prebuilt is %s (ID %s) and runtime %s (ID %s): %s", pre.Digest, pre.ID, run.Digest, run.ID, Difference(pre.Image, run.Image))
	case builderGo != host:
		t.Logf("builder Go %q, host Go %s: binaries identical: %v", builderGo, host, same)
	}
}

// envValue is the value of key in a container's KEY=value environment.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// appSum is the SHA-256 of /app in the image id.
func appSum(t *testing.T, cli *client.Client, id string) string {
	t.Helper()
	saved, err := cli.ImageSave(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	outer := tar.NewReader(saved)
	for {
		h, err := outer.Next()
		if err != nil {
			t.Fatalf("no /app in %s: %v", id, err)
		}
		if !strings.HasSuffix(h.Name, ".tar") {
			continue
		}
		inner := tar.NewReader(outer)
		for {
			ih, err := inner.Next()
			if err != nil {
				break
			}
			if ih.Name == "app" {
				sum := sha256.New()
				if _, err := io.Copy(sum, inner); err != nil {
					t.Fatal(err)
				}
				return hex.EncodeToString(sum.Sum(nil))
			}
		}
	}
}

func TestCreatedStepImages(t *testing.T) {
	out := `Step 1/4 : FROM golang:1.26 AS builder
 ---> aeb6ec341c0a
Step 2/4 : COPY go.mod go.sum ./
 ---> Using cache
 ---> 01d33f81bf68
Step 3/4 : RUN go build
 ---> Running in 5d1e2a3b4c5d
Removing intermediate container 5d1e2a3b4c5d
 ---> 9300cb772f49
Step 4/4 : COPY --from=builder /out/app /app
 ---> 6f0cf8c00d4c
Successfully built 6f0cf8c00d4c
`
	if got, want := createdStepImages(out), []string{"9300cb772f49", "6f0cf8c00d4c"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The Dockerfile's prebuilt stage, built by the engine, and the assembled
// image declare the same runtime configuration (the unit test
// TestDockerfileAgreesWithTheAssembledImage reads the Dockerfile; this asks
// the engine what it made of it). Only what a build adds on its own may
// differ: the creation time, which the classic builder takes from the clock.
func TestIntegrationDockerfileBuildAgreesWithAssembled(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	stamp := testStamp(u)
	repository := "localhost/dockerimage-test"
	assembled := buildTestImage(t, cli, repoCopy(t), repository, []string{"assembled-" + u}, stamp)

	// The classic builder, from the same binary.
	dir := repoCopy(t)
	bin, err := AppFromImage(assembled.Image)
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{HostBinary: string(bin)})
	tags := []string{"dockerfile-" + u}
	t.Cleanup(func() { removeImage(t, cli, "", Refs(repository, tags)...) })
	var out bytes.Buffer
	built, err := Build(ctx, cli, BuildOptions{Dir: dir, Repository: repository, Tags: tags, Stamp: stamp, Out: &out})
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out.String())
	}
	t.Cleanup(func() { removeImage(t, cli, built.ID) })

	a, err := cli.ImageInspect(ctx, assembled.ID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cli.ImageInspect(ctx, built.ID)
	if err != nil {
		t.Fatal(err)
	}
	type runtimeConfig struct {
		User         string
		Env          []string
		ExposedPorts any
		Healthcheck  any
		Entrypoint   []string
		Cmd          []string
		Labels       map[string]string
	}
	pick := func(c *dockerspec.DockerOCIImageConfig) string {
		b, _ := json.Marshal(runtimeConfig{c.User, c.Env, c.ExposedPorts, c.Healthcheck, c.Entrypoint, c.Cmd, c.Labels})
		return string(b)
	}
	if ga, gd := pick(a.Config), pick(d.Config); ga != gd {
		t.Errorf("runtime configuration differs:\nassembled  %s\nDockerfile %s", ga, gd)
	}
	if a.Os != d.Os || a.Architecture != d.Architecture {
		t.Errorf("platform: assembled %s/%s, Dockerfile %s/%s", a.Os, a.Architecture, d.Os, d.Architecture)
	}
	if len(a.RootFS.Layers) != 1 || len(d.RootFS.Layers) != 1 {
		t.Errorf("layers: assembled %d, Dockerfile %d; want 1 each", len(a.RootFS.Layers), len(d.RootFS.Layers))
	}
}

// What PushImage pushes, the engine pulls back as the very image it loaded.
func TestIntegrationPushImagePullsBackTheSameImage(t *testing.T) {
	cli := engine(t)
	ctx := context.Background()
	u := dockertest.Unique(t)
	host := startRegistry(t, nil)
	repository := host + "/acme/api"
	b := buildTestImage(t, cli, repoCopy(t), repository, []string{"p-" + u}, testStamp(u))
	pushed, err := PushImage(ctx, b.Image, b.Refs, Credentials{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pushed[0].Digest != b.Digest {
		t.Fatalf("pushed %s, built %s", pushed[0].Digest, b.Digest)
	}
	pullBackByDigest(t, cli, b, repository+"@"+b.Digest)
}
