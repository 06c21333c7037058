package deploy_test

// deploy:setup, then deploy:to, on environments with an explicit endpoint:
// this machine's engine through its socket (the suite's Swarm), and a
// multi-node test bed through its managers. The stack is the production
// file and the suite's overrides, plus a file giving the app a secret of
// its own (read from standard input) and an external network; the
// database's two secrets come from init_secrets.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/internal/swarmtest"
)

// setupOverride gives the app a secret no init_secrets entry makes and an
// external network (%s: its name).
const setupOverride = `version: "3.9"
services:
  app:
    secrets: [database_url, api_token]
    networks: [internal, edge]
networks:
  edge:
    external: true
    name: %s
secrets:
  api_token:
    external: true
`

// setupEnv writes an environments file with environment e2esetup of stack
// through endpoints (with init_secrets for the database's secrets when
// generate), and returns it and the external network's name.
func setupEnv(t *testing.T, f *fixture, stack string, endpoints []string, generate bool) (env, edge string) {
	t.Helper()
	edge = stack + "-edge"
	extra := filepath.Join(f.tmp, "setup-"+stack+".yml")
	if err := os.WriteFile(extra, fmt.Appendf(nil, setupOverride, edge), 0o644); err != nil {
		t.Fatal(err)
	}
	env = f.writeEnv(t.Name(), envSpec{Name: "e2esetup", Stack: stack, Files: []string{extra}, Endpoints: endpoints})
	if !generate {
		return env, edge
	}
	// The environment is the file's last: its keys end it.
	file, err := os.OpenFile(env, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.WriteString("    init_secrets:\n      postgres_password: \"{{random}}\"\n" +
		"      database_url: \"postgres://app:{{postgres_password}}@postgres:5432/app?sslmode=disable\"\n"); err != nil {
		t.Fatal(err)
	}
	return env, edge
}

// runSetup runs deploy:setup with stdin and checks its exit code.
func runSetup(t *testing.T, f *fixture, env string, stdin string, code int, args ...string) string {
	t.Helper()
	start := time.Now()
	args = append([]string{"deploy:setup", "e2esetup", "-image=" + f.repo + ":v1.0.0"}, args...)
	out, got := f.runTargetIn(t.Context(), env, nil, strings.NewReader(stdin), args...)
	t.Logf("%s: exit %d in %s\n%s", strings.Join(args, " "), got, time.Since(start).Round(100*time.Millisecond), out)
	if got != code {
		t.Fatalf("%s exited %d, want %d:\n%s", strings.Join(args, " "), got, code, out)
	}
	return out
}

func hasLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("the output has no line with %q:\n%s", l, out)
		}
	}
}

// allOK fails t unless every step line of out says ok.
func allOK(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "    ") && !strings.HasPrefix(l, "  ok ") {
			t.Errorf("a line of a run with nothing to make is not ok: %q\n%s", l, out)
		}
	}
}

// deploy:setup on this machine's Swarm through an explicit endpoint (the
// engine's socket): a dry run changes nothing; the first run makes the
// three secrets (one from standard input, never shown) and the external
// network, and checks the pull through the manager; the second makes
// nothing; then deploy:to reaches a running stack.
func TestE2ESetupThenDeploy(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2es" + unique()[:4]
	t.Cleanup(func() { f.removeStack(t, stack) })
	env, edge := setupEnv(t, f, stack, []string{f.cli.DaemonHost()}, true)
	canary := "token-" + unique() + unique()

	before := f.snapshot(t, stack)
	out := runSetup(t, f, env, canary, 0, "-secret=api_token", "-dryrun")
	hasLines(t, out, "  would  secret     api_token: would be made", "  would  network    "+edge+": would be made (overlay, attachable)", "Dry run: nothing was changed.")
	if after := f.snapshot(t, stack); after != before || networkExists(t.Context(), f.cli, edge) {
		t.Errorf("a dry run changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	out = runSetup(t, f, env, canary, 0, "-secret=api_token")
	hasLines(t, out,
		"Setup of e2esetup (stack "+stack+") through "+f.cli.DaemonHost()+" [makes what is missing]",
		"  ok     endpoint   "+f.cli.DaemonHost()+" answers",
		"  ok     placement  postgres (node.role == manager) can run on ",
		"  ok     registry   "+f.repo+":v1.0.0 (-image) resolves to "+f.digests["v1.0.0"][:19],
		"  ok     pull       the manager resolves it at "+f.registry+" with the credentials Swarm is given",
		"  ok     lock       taken",
		"  ok     secret     api_token: made "+stack+"_api_token_v1 (its value read from standard input; not shown)",
		"  ok     secret     database_url: made "+stack+"_database_url_v1 (a generated value",
		"  ok     secret     postgres_password: made "+stack+"_postgres_password_v1",
		"  ok     network    "+edge+": made (overlay, attachable)",
		"  ok     ci         .github/workflows/ci.yml has no job with environment: e2esetup",
	)
	if strings.Contains(out, canary) {
		t.Errorf("the output shows the secret's value:\n%s", out)
	}
	n, err := f.cli.NetworkInspect(t.Context(), edge, client.NetworkInspectOptions{})
	if err != nil || n.Network.Driver != "overlay" || !n.Network.Attachable || n.Network.Scope != "swarm" {
		t.Errorf("network %s: %+v, %v; want an attachable overlay of the Swarm", edge, n.Network, err)
	}

	before = f.snapshot(t, stack)
	out = runSetup(t, f, env, "", 0)
	allOK(t, out)
	hasLines(t, out, "  ok     secret     api_token: v1 exists", "  ok     network    "+edge+": exists (overlay, swarm)", "nothing made")
	if after := f.snapshot(t, stack); after != before {
		t.Errorf("a second run changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	expect(t, f, env, 0, "deploy:to", "e2esetup", "-image="+f.repo+":v1.0.0")
	onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
	onDigest(t, f, stack+"_postgres", f.serviceImages(t, stack)["postgres"])
}

// deploy:setup through a multi-node bed's managers: every node listed,
// the database placed on the manager only, the pull resolved by the bed's
// manager from the suite's registry; then deploy:to, and a second setup
// makes nothing.
func TestE2EMultinodeSetup(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	c := swarmtest.Start(t, swarmtest.Options{Forward: []int{f.port}})
	var hosts []string
	for _, m := range c.Managers() {
		hosts = append(hosts, m.Host)
	}
	stack := "mns" + unique()[:5]
	env, edge := setupEnv(t, f, stack, hosts, true)
	out := runSetup(t, f, env, "token-"+unique(), 0, "-secret=api_token")
	mgr := c.Managers()[0].Name
	want := []string{
		"  ok     placement  postgres (node.role == manager) can run on " + mgr + "\n",
		"  ok     pull       the manager resolves it at " + f.registry,
		"  ok     network    " + edge + ": made (overlay, attachable)",
	}
	for _, n := range c.Nodes {
		role := "worker, active, ready, " + n.Addr.String()
		if n.Manager {
			role = "manager (leader), active, ready, " + n.Addr.String()
		}
		want = append(want, "  ok     node       "+n.Name+": "+role)
	}
	hasLines(t, out, want...)

	expect(t, f, env, 0, "deploy:to", "e2esetup", "-image="+f.repo+":v1.0.0")
	cli := c.Client(c.Managers()[0])
	ts, err := cli.TaskList(t.Context(), client.TaskListOptions{Filters: client.Filters{}.Add("service", stack+"_postgres").Add("desired-state", "running")})
	if err != nil || len(ts.Items) != 1 || ts.Items[0].Status.State != swarm.TaskStateRunning || ts.Items[0].NodeID != c.Managers()[0].ID {
		t.Errorf("postgres's task: %v, %+v; want one running on %s", err, ts.Items, mgr)
	}
	allOK(t, runSetup(t, f, env, "", 0))
}

// On a terminal (script(1) gives the targets one), deploy:setup asks for
// each missing value in turn, without echo, and shows none of them.
func TestE2ESetupAsksOnATerminal(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	script, err := exec.LookPath("script")
	if err != nil {
		dockertest.Missing(t, "needs script(1) (util-linux) to give the targets a terminal: "+err.Error())
	}
	stack := "e2et" + unique()[:4]
	env, _ := setupEnv(t, f, stack, []string{f.cli.DaemonHost()}, false)
	args := []string{f.bin, "deploy:setup", "e2esetup", "-image=" + f.repo + ":v1.0.0"}
	cmd := f.command(t.Context(), env, nil)
	cmd.Path, cmd.Args = script, []string{"script", "-qec", strings.Join(args, " "), "/dev/null"}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, name := range []string{"api_token", "database_url", "postgres_password"} {
		waitFor(t, out, "Value of "+name+" (not shown): ", time.Minute)
		// The prompt is written just before echo is turned off.
		time.Sleep(300 * time.Millisecond)
		values[name] = "typed-" + unique() + unique()
		if _, err := io.WriteString(in, values[name]+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	_ = in.Close()
	err = cmd.Wait()
	f.keep(out.String())
	t.Logf("deploy:setup on a terminal: %v in %s\n%s", err, time.Since(start).Round(100*time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("deploy:setup on a terminal: %v", err)
	}
	hasLines(t, out.String(),
		"  ok     secret     api_token: made "+stack+"_api_token_v1 (its value asked for without echo; not shown)",
		"  ok     secret     database_url: made "+stack+"_database_url_v1 (its value asked for without echo; not shown)",
		"  ok     secret     postgres_password: made "+stack+"_postgres_password_v1 (its value asked for without echo; not shown)")
	for name, v := range values {
		if strings.Contains(out.String(), v) {
			t.Errorf("the terminal shows the value of %s:\n%s", name, out.String())
		}
	}
}
