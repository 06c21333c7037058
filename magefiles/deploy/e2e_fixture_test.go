package deploy_test

// The end-to-end fixture: a single-node Swarm of the tests' own, a registry
// on 127.0.0.1 started by deploy:init, the app image in three releases, a
// load client image, and the mage targets compiled from a git clone of the
// working tree, run as a stranger runs them. Set up once for the package
// and torn down in TestMain, so the engine ends as it began.

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/publish"
	"github.com/fractionate/service-template/magefiles/runner"
	"github.com/fractionate/service-template/magefiles/signature"
	"github.com/fractionate/service-template/magefiles/stack"
)

// Prefix starts the name of every end-to-end test: test:e2e runs them, one
// package at a time, and test:integration does not.
const e2ePrefix = dockertest.E2EPrefix

type fixture struct {
	cli       *client.Client
	tmp       string            // removed at the end
	clone     string            // a git repository holding the working tree; the targets run here
	bin       string            // the compiled mage targets
	port      int               // the registry's
	registry  string            // 127.0.0.1:port
	repo      string            // the app's repository in the registry
	postgres  string            // the Postgres image in the registry
	images    map[string]string // release name -> tag@digest in repo
	digests   map[string]string // release name -> digest
	load      string            // the load client image
	publicKey string            // the key protected environments verify; v1.0.0 is signed by it
	swarm     bool              // this machine's engine is the suite's Swarm
	// registrySrv is the multi-node suite's registry (no Swarm, no
	// registry container).
	registrySrv *http.Server
	gwBridge    bool         // docker_gwbridge existed before
	initEnv     string       // environments file deploy:init ran with
	outputs     bytes.Buffer // everything the targets printed, for the canary check
	mu          sync.Mutex
	variants    map[string]error // releases built on first use (release), by tag
	vmu         sync.Mutex
	overrides   sync.Once
}

var (
	fx      *fixture
	fxOnce  sync.Once
	fxErr   error
	fxSkip  string
	cleanup []func()

	// The multi-node suite's: the same images and targets, a registry of
	// its own, and no Swarm on this machine's engine, so that it can run
	// beside the single-node suite (in another go test process).
	fxBeds      *fixture
	fxBedsOnce  sync.Once
	fxBedsErr   error
	fxBedsSkip  string
	fxCleanupMu sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	os.Exit(code)
}

// setup returns the shared fixture, making it on first use. A test that
// cannot have it skips (or, under TEST_REQUIRE_DOCKER=1, fails).
//
// The single-node tests run side by side on the one Swarm (t.Parallel; go
// test's -parallel, the CPU count by default, says how many at once): they
// mostly wait on Swarm's timers, and each works on stacks of its own,
// named apart, and checks only those. TestE2EPreflightRefusals moves the
// clone's tags, so it runs alone, before the others.
func setup(t testing.TB) *fixture {
	t.Helper()
	if !strings.HasPrefix(t.Name(), e2ePrefix) && !strings.HasPrefix(t.Name(), "BenchmarkE2E") {
		t.Fatalf("%s uses the Swarm fixture, so its name must start with %s (or BenchmarkE2E)", t.Name(), e2ePrefix)
	}
	if testing.Short() {
		// plain skip: -short asks for the unit tests only.
		t.Skip("end-to-end test: skipped in -short mode")
	}
	if os.Getenv("TEST_SWARM") != "1" {
		// plain skip: TEST_SWARM unset is an explicit opt-out, not a
		// missing engine: the suite makes the engine a Swarm for minutes,
		// which nobody wants as a side effect of go test.
		t.Skip("set TEST_SWARM=1 to let the end-to-end tests make this engine a single-node Swarm (they leave it afterwards)")
	}
	fxOnce.Do(func() { fx, fxSkip, fxErr = newFixture(true) })
	if fxSkip != "" {
		dockertest.Missing(t, fxSkip)
	}
	if fxErr != nil {
		t.Fatalf("end-to-end fixture: %v", fxErr)
	}
	return fx
}

// setupBeds returns the multi-node suite's fixture: images and compiled
// targets as setup's, pushed to a registry on loopback that is no
// container, and no Swarm on this machine's engine.
func setupBeds(t testing.TB) *fixture {
	t.Helper()
	if !strings.HasPrefix(t.Name(), multinodePrefix) {
		t.Fatalf("%s uses the multi-node fixture, so its name must start with %s", t.Name(), multinodePrefix)
	}
	if testing.Short() {
		// plain skip: -short asks for the unit tests only.
		t.Skip("end-to-end test: skipped in -short mode")
	}
	if os.Getenv("TEST_MULTINODE") != "1" {
		// plain skip: TEST_MULTINODE unset is an explicit opt-out (as
		// TEST_SWARM is): the beds run several engines for minutes.
		t.Skip("set TEST_MULTINODE=1 to run the deploy targets on multi-node Swarm test beds (several dockerd in network namespaces; root)")
	}
	fxBedsOnce.Do(func() { fxBeds, fxBedsSkip, fxBedsErr = newFixture(false) })
	if fxBedsSkip != "" {
		dockertest.Missing(t, fxBedsSkip)
	}
	if fxBedsErr != nil {
		t.Fatalf("multi-node fixture: %v", fxBedsErr)
	}
	return fxBeds
}

// multinodePrefix starts the multi-node scenarios' names: test:e2e runs
// them in a go test process of their own, beside the single-node suite.
const multinodePrefix = "TestE2EMultinode"

// newFixture builds the suite's images and targets. With swarm, this
// machine's engine becomes a single-node Swarm by deploy:init, which also
// starts the registry; without, an in-process registry on loopback serves.
func newFixture(withSwarm bool) (f *fixture, skip string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cli, err := dockerimage.NewClient()
	if err != nil {
		return nil, "end-to-end tests need a Docker engine: " + err.Error(), nil
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, "end-to-end tests need a Docker engine: " + err.Error(), nil
	}
	if st := info.Info.Swarm.LocalNodeState; withSwarm && st != swarm.LocalNodeStateInactive {
		return nil, fmt.Sprintf("the engine is in a Swarm already (%s): the end-to-end tests only use a Swarm of their own", st), nil
	}
	regImage := cmp.Or(os.Getenv("REGISTRY_IMAGE"), deploy.DefaultRegistryImage)
	pgImage := cmp.Or(os.Getenv("POSTGRES_IMAGE"), "postgres:16-alpine")
	needed := []string{pgImage}
	if withSwarm {
		needed = append(needed, regImage)
	}
	for _, img := range needed {
		if _, err := cli.ImageInspect(ctx, img); err == nil {
			continue
		}
		// Pulled where a registry is reachable (GitHub's runners); where
		// none is, CI builds stand-ins and names them.
		rc, err := cli.ImagePull(ctx, img, client.ImagePullOptions{})
		if err == nil {
			err = rc.Wait(ctx)
		}
		if err != nil {
			return nil, fmt.Sprintf("end-to-end tests need the image %s (REGISTRY_IMAGE, POSTGRES_IMAGE name others), and pulling it failed: %v", img, err), nil
		}
	}
	f = &fixture{cli: cli, images: map[string]string{}, digests: map[string]string{}, swarm: withSwarm}
	f.tmp, err = os.MkdirTemp("", "deploy-e2e-")
	if err != nil {
		return nil, "", err
	}
	f.gwBridge = networkExists(ctx, cli, "docker_gwbridge")
	fxCleanupMu.Lock()
	cleanup = append(cleanup, f.teardown)
	fxCleanupMu.Unlock()

	// The working tree as a clean repository of its own: the targets read
	// git facts, and the protected-environment tests change them.
	f.clone = filepath.Join(f.tmp, "repo")
	repoRoot, _ := filepath.Abs("../..")
	if err := dockerimage.CopyRepo(ctx, repoRoot, f.clone); err != nil {
		return nil, "", err
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-q", "-m", "e2e"},
	} {
		if _, err := runner.Output(ctx, runner.Command("git", args...).InDir(f.clone)); err != nil {
			return nil, "", err
		}
	}
	f.bin = filepath.Join(f.tmp, "mage-targets")
	if _, err := runner.Output(ctx, runner.Command("go", "tool", "mage", "-compile", f.bin).InDir(f.clone)); err != nil {
		return nil, "", fmt.Errorf("compile the mage targets: %w", err)
	}

	if withSwarm {
		// deploy:init makes the Swarm and starts the registry, as on a laptop.
		f.port = freePort()
		f.registry = "127.0.0.1:" + strconv.Itoa(f.port)
		f.repo = f.registry + "/e2e-app"
		f.initEnv = f.writeEnv("init", envSpec{Name: "e2einit", Stack: "e2einit", Registry: true})
		if out, code := f.runTarget(ctx, f.initEnv, nil, "deploy:init", "e2einit"); code != 0 {
			return nil, "", fmt.Errorf("deploy:init exited %d:\n%s", code, out)
		}
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		f.registrySrv = &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: time.Minute}
		go func() { _ = f.registrySrv.Serve(l) }()
		f.port = l.Addr().(*net.TCPAddr).Port
		f.registry = "127.0.0.1:" + strconv.Itoa(f.port)
		f.repo = f.registry + "/e2e-app"
	}
	// The front proxy's network, which the production file's app joins:
	// made here, as deploy:proxy would, so that every test can deploy
	// without running a proxy (the proxy's tests run one). A bed's Swarm
	// gets it when its environment is written.
	if withSwarm {
		if err := ensureProxyNetwork(ctx, cli); err != nil {
			return nil, "", err
		}
	}

	// The releases: v1 and v2 differ in their stamped version (so in their
	// binary and digest); bad is v1 whose health check never passes.
	for _, v := range []string{"v1.0.0", "v2.0.0"} {
		if err := f.buildApp(ctx, v); err != nil {
			return nil, "", err
		}
	}
	if err := f.derive(ctx, "bad", "v1.0.0", `HEALTHCHECK --interval=2s --timeout=2s --start-period=1s --retries=2 CMD ["/app", "no-such-command"]`); err != nil {
		return nil, "", err
	}
	// A key pair protected environments verify against; v1.0.0 is signed,
	// the other releases are not.
	priv, pub, err := signature.GenerateKeyPair(secret.New("e2e"))
	if err != nil {
		return nil, "", err
	}
	f.publicKey = filepath.Join(f.tmp, "cosign.pub")
	if err := os.WriteFile(f.publicKey, pub, 0o644); err != nil {
		return nil, "", err
	}
	signer, err := signature.LoadSigner(priv, secret.New("e2e"))
	if err != nil {
		return nil, "", err
	}
	if _, _, err := publish.Sign(ctx, f.repo+"@"+f.digests["v1.0.0"], signer, dockerimage.Credentials{}); err != nil {
		return nil, "", fmt.Errorf("sign v1.0.0: %w", err)
	}
	f.postgres = f.registry + "/postgres:e2e"
	if _, err := f.push(ctx, pgImage, f.postgres); err != nil {
		return nil, "", err
	}
	if f.load, err = f.buildLoadClient(ctx); err != nil {
		return nil, "", err
	}
	return f, "", nil
}

func (f *fixture) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if f.swarm {
		// Services first, and their containers with them: leaving the
		// Swarm would strand the containers of tasks being removed.
		if ss, err := f.cli.ServiceList(ctx, client.ServiceListOptions{}); err == nil {
			for _, s := range ss.Items {
				_, _ = f.cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{})
			}
		}
		f.waitNoTaskContainers(ctx)
		if _, err := f.cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
			fmt.Fprintln(os.Stderr, "e2e cleanup: leave the Swarm:", err)
		}
		name := "e2einit-registry"
		if _, err := f.cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			fmt.Fprintln(os.Stderr, "e2e cleanup: remove the registry:", err)
		}
	}
	if f.registrySrv != nil {
		_ = f.registrySrv.Close()
	}
	vs, _ := f.cli.VolumeList(ctx, client.VolumeListOptions{})
	for _, v := range vs.Items {
		if f.swarm && strings.HasPrefix(v.Name, "e2e") {
			if _, err := f.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				fmt.Fprintln(os.Stderr, "e2e cleanup: remove volume", v.Name, err)
			}
		}
	}
	// By name, never by ID: a pushed tag shares its image with the local
	// one it came from (the Postgres image), which must stay. Only this
	// fixture's names: another suite's fixture may run beside this one.
	imgs, _ := f.cli.ImageList(ctx, client.ImageListOptions{All: true})
	for _, img := range imgs.Items {
		for _, ref := range append(img.RepoTags, img.RepoDigests...) {
			if strings.HasPrefix(ref, f.registry+"/") || ref == f.load {
				_, _ = f.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
			}
		}
	}
	if f.swarm && !f.gwBridge {
		if _, err := f.cli.NetworkRemove(ctx, "docker_gwbridge", client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			fmt.Fprintln(os.Stderr, "e2e cleanup: remove docker_gwbridge:", err)
		}
	}
	_ = f.cli.Close()
	_ = os.RemoveAll(f.tmp)
}

// waitNoTaskContainers waits for the containers of Swarm tasks to go,
// then removes any that stay.
func (f *fixture) waitNoTaskContainers(ctx context.Context) {
	tasks := client.Filters{}.Add("label", "com.docker.swarm.service.id")
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil {
		cs, err := f.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: tasks})
		if err != nil || len(cs.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, c := range cs.Items {
				_, _ = f.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			}
			return
		}
		time.Sleep(time.Second)
	}
}

// buildApp builds the app image stamped with version and pushes it.
func (f *fixture) buildApp(ctx context.Context, version string) error {
	var out bytes.Buffer
	b, err := dockerimage.BuildImage(ctx, runner.Exec{Quiet: true, Stderr: &out}, f.cli, dockerimage.Plan{
		Dir: f.clone, Repository: f.repo, Tags: []string{version}, Out: &out,
		Stamp: dockerimage.Stamp{Version: version, Commit: "e2e", Title: "e2e-app"},
	})
	if err != nil {
		return fmt.Errorf("build %s: %w\n%s", version, err, out.String())
	}
	_, err = f.push(ctx, b.Refs[0], b.Refs[0])
	return err
}

// migrationV3 is the one more migration release v3.0.0 has: expand only,
// so v1 and v2 keep working on the schema it leaves.
const migrationV3 = `-- +goose Up
ALTER TABLE notes ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
-- +goose Down
ALTER TABLE notes DROP COLUMN tags;
`

// migrationHalfWay fails after two of its statements succeeded: its
// transaction must leave nothing behind.
const migrationHalfWay = `-- +goose Up
CREATE TABLE half_way (id int);
INSERT INTO half_way VALUES (1);
SELECT 1/0;
-- +goose Down
DROP TABLE half_way;
`

// variants are releases built from the working tree plus files, on first
// use: the tag, the files.
var variants = map[string]map[string]string{
	"v3.0.0": {"migrations/00003_add_tags.sql": migrationV3},
	"badmig": {"migrations/00003_half_way.sql": migrationHalfWay},
}

// release makes sure release tag is in the registry, building a variant
// the first time it is asked for, and returns its digest.
func (f *fixture) release(t testing.TB, tag string) string {
	t.Helper()
	f.vmu.Lock()
	defer f.vmu.Unlock()
	if f.variants == nil {
		f.variants = map[string]error{}
	}
	err, done := f.variants[tag]
	if !done {
		err = f.buildVariant(t.Context(), tag, variants[tag])
		f.variants[tag] = err
	}
	if err != nil {
		t.Fatalf("release %s: %v", tag, err)
	}
	return f.digests[tag]
}

// buildVariant builds release tag, stamped with it, from a copy of the
// clone with extra files, and pushes it.
func (f *fixture) buildVariant(ctx context.Context, tag string, files map[string]string) error {
	dir := filepath.Join(f.tmp, "repo-"+tag)
	if err := dockerimage.CopyRepo(ctx, f.clone, dir); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	b, err := dockerimage.BuildImage(ctx, runner.Exec{Quiet: true, Stderr: &out}, f.cli, dockerimage.Plan{
		Dir: dir, Repository: f.repo, Tags: []string{tag}, Out: &out,
		Stamp: dockerimage.Stamp{Version: tag, Commit: "e2e", Title: "e2e-app"},
	})
	if err != nil {
		return fmt.Errorf("build %s: %w\n%s", tag, err, out.String())
	}
	_, err = f.push(ctx, b.Refs[0], b.Refs[0])
	return err
}

// psql runs sql with psql in the stack's Postgres task container, as the
// superuser over its local socket, and returns what it printed. The SQL goes
// in on standard input: a password in it shows in no process list and no
// inspect.
func (f *fixture) psql(t testing.TB, stack, sql string) string {
	t.Helper()
	ctx := t.Context()
	cs, err := f.cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
		Add("label", "com.docker.swarm.service.name="+stack+"_postgres").Add("status", "running")})
	if err != nil || len(cs.Items) != 1 {
		t.Fatalf("the Postgres task container of %s: %v (%d found)", stack, err, len(cs.Items))
	}
	ex, err := f.cli.ExecCreate(ctx, cs.Items[0].ID, client.ExecCreateOptions{
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
		Cmd: []string{"psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-U", "app", "-d", "app"},
	})
	if err != nil {
		t.Fatal(err)
	}
	att, err := f.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := io.WriteString(att.Conn, sql+"\n"); err != nil {
		t.Fatal(err)
	}
	_ = att.CloseWrite()
	var stdout, stderr bytes.Buffer
	_, _ = stdcopy.StdCopy(&stdout, &stderr, att.Reader)
	insp, err := f.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil || insp.ExitCode != 0 {
		// Not the SQL: it may hold a password.
		t.Fatalf("psql in %s's Postgres: exit %d, %v: %s", stack, insp.ExitCode, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// derive builds release name from another with extra Dockerfile lines.
func (f *fixture) derive(ctx context.Context, name, from, lines string) error {
	dockerfile := "FROM " + f.repo + ":" + from + "\n" + lines + "\n"
	ref := f.repo + ":" + name
	if err := f.buildContext(ctx, ref, map[string][]byte{"Dockerfile": []byte(dockerfile)}); err != nil {
		return err
	}
	_, err := f.push(ctx, ref, ref)
	return err
}

// push tags src as ref and pushes it, recording the digest under ref's tag.
func (f *fixture) push(ctx context.Context, src, ref string) (string, error) {
	if src != ref {
		if _, err := f.cli.ImageTag(ctx, client.ImageTagOptions{Source: src, Target: ref}); err != nil {
			return "", fmt.Errorf("tag %s as %s: %w", src, ref, err)
		}
	}
	pushed, err := dockerimage.Push(ctx, f.cli, []string{ref}, dockerimage.Credentials{}, io.Discard)
	if err != nil {
		return "", err
	}
	tag := deploy.ParseImage(ref).Tag
	if strings.HasPrefix(ref, f.repo+":") {
		f.images[tag] = tag + "@" + pushed[0].Digest
		f.digests[tag] = pushed[0].Digest
	}
	return pushed[0].Digest, nil
}

// buildContext builds an image from files with the classic builder.
func (f *fixture) buildContext(ctx context.Context, ref string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		mode := int64(0o644)
		if name != "Dockerfile" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := f.cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		return fmt.Errorf("build %s: %w", ref, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("build %s: %s", ref, out)
	}
	return nil
}

// buildLoadClient compiles the load client and packages it FROM scratch.
func (f *fixture) buildLoadClient(ctx context.Context) (string, error) {
	bin := filepath.Join(f.tmp, "loadclient")
	goarch, err := runner.Output(ctx, runner.Command("go", "env", "GOARCH"))
	if err != nil {
		return "", err
	}
	cmd := runner.Command("go", "build", "-trimpath", "-o", bin, "./magefiles/loadclient").InDir(f.clone).
		WithEnv("CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if _, err := runner.Output(ctx, cmd); err != nil {
		return "", err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	ref := "e2e-loadclient:" + unique()
	return ref, f.buildContext(ctx, ref, map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY loadclient /loadclient\nENTRYPOINT [\"/loadclient\"]\n"),
		"loadclient": data,
	})
}

// envSpec is one environment of a test's environments file.
type envSpec struct {
	Name, Stack string
	Files       []string // besides docker-compose.prod.yml and the test override
	Protected   bool
	PromoteFrom string
	Registry    bool
	Deadline    string
	MaxReplicas int
	Variables   map[string]string
	Production  bool   // the production timings: machineOverride only
	Smoke       string // the smoke key's value, as YAML: {service: app}
	Notify      string // the notify key's value, as YAML
	// Bare: the production file alone, as a protected environment has it
	// (the machine override breaks the production rules); such an
	// environment can be planned here, not deployed.
	Bare bool
	// Endpoints are the managers to deploy through (a multi-node test
	// bed's); this machine's engine when empty.
	Endpoints []string
	// Proxy is the proxy key's value, as YAML.
	Proxy string
}

// machineOverride holds what only this machine needs: Postgres reached by
// DNS round robin (there is no IPVS for VIPs here), a network the load
// client's container can join, and a longer query timeout: with a dozen
// engines on two cores, Postgres now and then stalls past the production
// 3 s, and the load tests should see that as latency (they report it), not
// as 503s they cannot tell from the deploy's. Everything else is the
// production file's.
const machineOverride = `version: "3.9"
services:
  app:
    environment:
      DATABASE_QUERY_TIMEOUT: 8s
  postgres:
    deploy:
      endpoint_mode: dnsrr
networks:
  internal:
    attachable: true
`

// testOverride is machineOverride plus shorter update delays and monitor
// periods for the app, so the suite ends in minutes.
const testOverride = `version: "3.9"
services:
  app:
    environment:
      DATABASE_QUERY_TIMEOUT: 8s
    deploy:
      update_config:
        delay: 2s
        monitor: 8s
      rollback_config:
        delay: 1s
  postgres:
    deploy:
      endpoint_mode: dnsrr
networks:
  internal:
    attachable: true
`

// writeEnv writes an environments file holding envs and returns its path.
func (f *fixture) writeEnv(file string, envs ...envSpec) string {
	fast, machine := filepath.Join(f.tmp, "swarm-test.yml"), filepath.Join(f.tmp, "swarm-machine.yml")
	// Once: tests running side by side read them while others write envs.
	f.overrides.Do(func() {
		_ = os.WriteFile(fast, []byte(testOverride), 0o644)
		_ = os.WriteFile(machine, []byte(machineOverride), 0o644)
	})
	var b strings.Builder
	b.WriteString("environments:\n")
	for _, e := range envs {
		override := fast
		if e.Production {
			override = machine
		}
		fmt.Fprintf(&b, "  %s:\n    stack: %s\n    image: %s\n    app_env: staging\n", e.Name, e.Stack, f.repo)
		if len(e.Endpoints) > 0 {
			fmt.Fprintf(&b, "    endpoints: [%s]\n", strings.Join(e.Endpoints, ", "))
		}
		fmt.Fprintf(&b, "    deadline: %s\n    history: 10\n    max_replicas: %d\n", cmp.Or(e.Deadline, "3m"), cmp.Or(e.MaxReplicas, 4))
		if e.Bare {
			b.WriteString("    files: [docker-compose.prod.yml")
		} else {
			fmt.Fprintf(&b, "    files: [docker-compose.prod.yml, %s", override)
		}
		for _, x := range e.Files {
			fmt.Fprintf(&b, ", %s", x)
		}
		b.WriteString("]\n")
		if e.Protected {
			fmt.Fprintf(&b, "    protected: true\n    promote_from: %s\n    verify: {key: %s}\n", e.PromoteFrom, f.publicKey)
		}
		if e.Registry {
			fmt.Fprintf(&b, "    registry:\n      port: %d\n", f.port)
		}
		if e.Smoke != "" {
			fmt.Fprintf(&b, "    smoke: %s\n", e.Smoke)
		}
		if e.Notify != "" {
			fmt.Fprintf(&b, "    notify: %s\n", e.Notify)
		}
		if e.Proxy != "" {
			fmt.Fprintf(&b, "    proxy: %s\n", e.Proxy)
		}
		// Routed by the proxy under a host and router names of the
		// stack's own: many stacks share the Swarm (and traefik-public).
		vars := map[string]string{"POSTGRES_IMAGE": f.postgres, "APP_HOST": e.Stack + ".e2e.test", "ROUTER": e.Stack}
		maps.Copy(vars, e.Variables)
		b.WriteString("    variables:\n")
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			fmt.Fprintf(&b, "      %s: %q\n", k, vars[k])
		}
		if len(e.Endpoints) > 0 {
			// A multi-node bed's Swarm needs the proxy's network too.
			if err := proxyNetworkAt(e.Endpoints[0]); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %s on %s: %v\n", stack.ProxyNetwork, e.Endpoints[0], err)
			}
		}
	}
	path := filepath.Join(f.tmp, file+".yml")
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
	return path
}

// runTarget runs the compiled targets in the clone, as a stranger would,
// and returns their output and exit code.
func (f *fixture) runTarget(ctx context.Context, envFile string, env []string, args ...string) (string, int) {
	return f.runTargetIn(ctx, envFile, env, nil, args...)
}

// runTargetIn is runTarget with stdin as the targets' standard input.
func (f *fixture) runTargetIn(ctx context.Context, envFile string, env []string, stdin io.Reader, args ...string) (string, int) {
	cmd := f.command(ctx, envFile, env, args...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	f.keep(out.String())
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return out.String() + "\n" + err.Error(), -1
	}
	return out.String(), code
}

func (f *fixture) command(ctx context.Context, envFile string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, f.bin, args...)
	cmd.Dir = f.clone
	cmd.Env = append(os.Environ(), "DEPLOY_ENVIRONMENTS_FILE="+envFile, "REGISTRY_IMAGE="+cmp.Or(os.Getenv("REGISTRY_IMAGE"), deploy.DefaultRegistryImage))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func (f *fixture) keep(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outputs.WriteString(s)
}

// createSecrets makes version 1 of the stack's two secrets, as secrets:set
// does, with password in them.
func (f *fixture) createSecrets(t testing.TB, stack, password string) {
	t.Helper()
	for name, value := range map[string]string{
		"postgres_password": password,
		"database_url":      databaseURL(password),
	} {
		if _, err := deploy.SetSecret(t.Context(), f.cli, stack, name, secret.New(value)); err != nil {
			t.Fatalf("create secret %s of %s: %v", name, stack, err)
		}
	}
}

// databaseURL is the stack's database_url for a password.
func databaseURL(password string) string {
	return "postgres://app:" + password + "@postgres:5432/app?sslmode=disable"
}

// removeStack removes a stack's services when a test ends. Their
// containers stop in the background (each drains for seconds); the
// fixture's teardown waits for them and removes the stacks' volumes.
func (f *fixture) removeStack(t testing.TB, stack string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	byStack := client.Filters{}.Add("label", deploy.StackLabel+"="+stack)
	ss, err := f.cli.ServiceList(ctx, client.ServiceListOptions{Filters: byStack})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, s := range ss.Items {
		if _, err := f.cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil {
			t.Errorf("cleanup: remove %s: %v", s.Spec.Name, err)
		}
	}
}

// Load is a load client running on a stack's network.
type Load struct {
	cli *client.Client
	id  string
}

// startLoad starts the load client against the stack's app.
func (f *fixture) startLoad(t testing.TB, stack string) *Load {
	return f.startLoadOn(t, f.cli, f.load, stack)
}

// startLoadOn starts the load client, image, in the engine of cli (a
// multi-node test bed's manager, say), on the stack's network.
func (f *fixture) startLoadOn(t testing.TB, cli *client.Client, image, stack string) *Load {
	t.Helper()
	ctx := t.Context()
	r, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "e2e-load-" + unique(),
		Config: &container.Config{Image: image, Cmd: []string{
			"-url", "http://tasks.app:8080", "-rate", "60", "-slow", "4", "-slow-duration", "3s",
		}},
		HostConfig:       &container.HostConfig{},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{stack + "_internal": {}}},
	})
	if err != nil {
		t.Fatalf("create the load client: %v", err)
	}
	l := &Load{cli: cli, id: r.ID}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), r.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start the load client: %v", err)
	}
	return l
}

// Stop ends the load and returns its counts.
func (l *Load) Stop(t testing.TB) loadSummary {
	t.Helper()
	ctx := t.Context()
	if _, err := l.cli.ContainerKill(ctx, l.id, client.ContainerKillOptions{Signal: "TERM"}); err != nil {
		t.Fatalf("stop the load client: %v", err)
	}
	wait := l.cli.ContainerWait(ctx, l.id, client.ContainerWaitOptions{})
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		t.Fatalf("wait for the load client: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the load client did not stop within a minute")
	}
	rc, err := l.cli.ContainerLogs(ctx, l.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	_, _ = stdcopy.StdCopy(&stdout, &stderr, rc)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var s loadSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("load client summary: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	t.Logf("load: %d GETs (%d failed), %d slow uploads (%d failed) in %.0fs: %.0f requests/s", s.Sent, s.Failed, s.SlowSent, s.SlowFailed, s.Seconds, float64(s.Sent+s.SlowSent)/s.Seconds)
	return s
}

type loadSummary struct {
	Sent       int64    `json:"sent"`
	Failed     int64    `json:"failed"`
	SlowSent   int64    `json:"slow_sent"`
	SlowFailed int64    `json:"slow_failed"`
	Seconds    float64  `json:"seconds"`
	Errors     []string `json:"errors"`
}

// minLoadRate is the GETs/s below which "nothing failed" would say too
// little: the client asks for 60/s, and on a busy 2-core machine (two
// tests side by side, beside the other lanes) it gets a little under 50.
const minLoadRate = 40

// zeroFailures fails t unless the load lost nothing and ran at
// minLoadRate or more.
func zeroFailures(t testing.TB, s loadSummary) {
	t.Helper()
	if s.Failed != 0 || s.SlowFailed != 0 {
		t.Errorf("%d of %d requests and %d of %d slow uploads failed: %v", s.Failed, s.Sent, s.SlowFailed, s.SlowSent, s.Errors)
	}
	if rate := float64(s.Sent) / s.Seconds; rate < minLoadRate {
		t.Errorf("the load ran at %.1f requests/s, want at least %d", rate, minLoadRate)
	}
	if s.SlowSent == 0 {
		t.Error("no slow upload was sent")
	}
}

// serviceImages are the digests the stack's services' specs run.
func (f *fixture) serviceImages(t testing.TB, stack string) map[string]string {
	t.Helper()
	ss, err := f.cli.ServiceList(t.Context(), client.ServiceListOptions{Filters: client.Filters{}.Add("label", deploy.StackLabel+"="+stack)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range ss.Items {
		out[strings.TrimPrefix(s.Spec.Name, stack+"_")] = deploy.ImageOf(s.Spec).Digest
	}
	return out
}

// taskDigests are the digests of the running tasks of a service.
func (f *fixture) taskDigests(t testing.TB, service string) []string {
	t.Helper()
	ts, err := f.cli.TaskList(t.Context(), client.TaskListOptions{Filters: client.Filters{}.Add("service", service).Add("desired-state", "running")})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range ts.Items {
		if task.Status.State == swarm.TaskStateRunning {
			out = append(out, deploy.ParseImage(task.Spec.ContainerSpec.Image).Digest)
		}
	}
	return out
}

// snapshot is what must not change when a target refuses or dry-runs: the
// services, secrets and configs whose names start with prefix (a test's
// stacks: the other tests' change beside them).
func (f *fixture) snapshot(t testing.TB, prefix string) string {
	t.Helper()
	ctx := t.Context()
	ours := func(name string) bool { return strings.HasPrefix(name, prefix) }
	var b strings.Builder
	ss, err := f.cli.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss.Items {
		if ours(s.Spec.Name) {
			fmt.Fprintf(&b, "service %s v%d %s\n", s.Spec.Name, s.Version.Index, s.Spec.TaskTemplate.ContainerSpec.Image)
		}
	}
	sec, err := f.cli.SecretList(ctx, client.SecretListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sec.Items {
		if ours(s.Spec.Name) {
			fmt.Fprintf(&b, "secret %s %s v%d\n", s.Spec.Name, s.ID, s.Version.Index)
		}
	}
	cfg, err := f.cli.ConfigList(ctx, client.ConfigListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Items {
		if ours(c.Spec.Name) {
			fmt.Fprintf(&b, "config %s %s\n", c.Spec.Name, c.ID)
		}
	}
	return sortLines(b.String())
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// ensureProxyNetwork makes traefik-public on cli's Swarm when it is missing.
func ensureProxyNetwork(ctx context.Context, cli *client.Client) error {
	if networkExists(ctx, cli, stack.ProxyNetwork) {
		return nil
	}
	_, err := cli.NetworkCreate(ctx, stack.ProxyNetwork, client.NetworkCreateOptions{Driver: "overlay", Attachable: true})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("create %s: %w", stack.ProxyNetwork, err)
	}
	return nil
}

// proxyNetworkAt makes traefik-public on the Swarm of the engine at host.
func proxyNetworkAt(host string) error {
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return ensureProxyNetwork(ctx, cli)
}

func networkExists(ctx context.Context, cli *client.Client, name string) bool {
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", "^"+name+"$")})
	return err == nil && len(ns.Items) > 0
}

// freePort returns a loopback port that was free a moment ago.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func unique() string { return strings.ToLower(rand.Text()[:8]) }

// lockedBuffer collects a running command's output for another goroutine
// to read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until out contains s.
func waitFor(t testing.TB, out *lockedBuffer, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", s, timeout, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
