package deploy_test

// The deploy targets on several machines: a multi-node Swarm test bed
// (internal/swarmtest, one engine per network namespace) behind each
// scenario, sharing the suite's fixture: the images in its registry
// (forwarded to every node, so nodes pull for real) and the compiled
// targets. Faults are the bed's: a node's engine killed or stopped, its
// link cut, the node drained. Each scenario prints a line of its figures:
// requests sent and failed, the exit code and the seconds from the fault.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/internal/swarmtest"
	"github.com/fractionate/service-template/magefiles/deploy"
)

// spreadOverride runs the app at three replicas, one per node where it can.
const spreadOverride = `version: "3.9"
services:
  app:
    deploy:
      replicas: 3
      placement:
        preferences:
          - spread: node.id
`

// bed is a multi-node Swarm with a stack's environment on it.
type bed struct {
	f     *fixture
	c     *swarmtest.Cluster
	stack string
	env   string // the environments file: environment e2e through the bed's managers
	extra []string
}

// newBed brings up a test bed, makes the stack's secrets on it and writes
// an environment that deploys to it through its managers, with the spread
// override and extra stack files.
func newBed(t *testing.T, f *fixture, opts swarmtest.Options, extra ...string) *bed {
	t.Helper()
	opts.Forward = []int{f.port}
	c := swarmtest.Start(t, opts)
	b := &bed{f: f, c: c, stack: "mn" + unique()[:6], extra: extra}
	spread := filepath.Join(f.tmp, "spread-"+b.stack+".yml")
	if err := os.WriteFile(spread, []byte(spreadOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	b.extra = append([]string{spread}, extra...)
	_, mgr, err := c.Manager(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pw := "pw" + unique()
	for name, value := range map[string]string{"postgres_password": pw, "database_url": databaseURL(pw)} {
		if _, err := deploy.SetSecret(t.Context(), mgr, b.stack, name, secret.New(value)); err != nil {
			t.Fatal(err)
		}
	}
	var hosts []string
	for _, m := range c.Managers() {
		hosts = append(hosts, m.Host)
	}
	b.writeEnv(t, hosts)
	return b
}

// writeEnv (re)writes the bed's environment with the managers to try, in
// order.
func (b *bed) writeEnv(t *testing.T, endpoints []string) {
	b.env = b.f.writeEnv(t.Name()+"-"+unique()[:4], envSpec{Name: "e2e", Stack: b.stack, Files: b.extra, Endpoints: endpoints, Deadline: "4m"})
}

// manager is a manager that answers, with its client.
func (b *bed) manager(t *testing.T) *client.Client {
	t.Helper()
	_, cli, err := b.c.Manager(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// load starts the suite's load client on the bed's first manager, on the
// stack's network.
func (b *bed) load(t *testing.T) *Load {
	t.Helper()
	ref := b.f.loadImage(t)
	cli := b.c.Client(b.c.Managers()[0])
	rc, err := cli.ImagePull(t.Context(), ref, client.ImagePullOptions{})
	if err == nil {
		err = rc.Wait(t.Context())
	}
	if err != nil {
		t.Fatalf("pull the load client on the bed: %v", err)
	}
	return b.f.startLoadOn(t, cli, ref, b.stack)
}

// loadImage is the load client in the suite's registry, for beds to pull.
func (f *fixture) loadImage(t *testing.T) string {
	t.Helper()
	f.vmu.Lock()
	defer f.vmu.Unlock()
	ref := f.registry + "/e2e-loadclient:" + strings.TrimPrefix(f.load, "e2e-loadclient:")
	if _, done := f.images["loadclient"]; !done {
		if _, err := f.push(t.Context(), f.load, ref); err != nil {
			t.Fatalf("push the load client: %v", err)
		}
		f.images["loadclient"] = ref
	}
	return ref
}

// tasksByNode maps the hostnames of the nodes running the service's tasks
// to how many each runs.
func (b *bed) tasksByNode(t *testing.T, service string) map[string]int {
	t.Helper()
	cli := b.manager(t)
	ns, err := cli.NodeList(t.Context(), client.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, n := range ns.Items {
		names[n.ID] = n.Description.Hostname
	}
	ts, err := cli.TaskList(t.Context(), client.TaskListOptions{Filters: client.Filters{}.Add("service", b.stack+"_"+service).Add("desired-state", "running")})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, task := range ts.Items {
		if task.Status.State == swarm.TaskStateRunning && names[task.NodeID] != "" {
			out[names[task.NodeID]]++
		}
	}
	return out
}

// background runs a target without waiting; done reports its exit code.
func (b *bed) background(t *testing.T, args ...string) (out *lockedBuffer, done <-chan int) {
	t.Helper()
	out = &lockedBuffer{}
	cmd := b.f.command(t.Context(), b.env, nil, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		b.f.keep(out.String())
		ch <- cmd.ProcessState.ExitCode()
	}()
	return out, ch
}

// figures is one scenario's line for the closing table.
func figures(t *testing.T, name string, s loadSummary, code int, notes ...string) {
	t.Helper()
	t.Logf("FIGURES | %s | %d GETs, %d failed | %d slow uploads, %d failed | exit %d | %s", name, s.Sent, s.Failed, s.SlowSent, s.SlowFailed, code, strings.Join(notes, "; "))
}

// Scenarios 1 and 9: the app spread over three nodes, v1 to v2 under load
// with no failed request; deploy:status shows every node and what runs
// where; deploy:history names the nodes a change started tasks on.
func TestE2EMultinodeSpread(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	b := newBed(t, f, swarmtest.Options{})
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if on := b.tasksByNode(t, "app"); len(on) != 3 {
		t.Fatalf("app's tasks are on %v, want one on each of the 3 nodes", on)
	}
	load := b.load(t)
	time.Sleep(3 * time.Second)
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	time.Sleep(2 * time.Second)
	s := load.Stop(t)
	zeroFailures(t, s)
	figures(t, "1 v1 to v2 over three nodes", s, 0)

	status := expect(t, f, b.env, 0, "deploy:status", "e2e")
	withApp := 0
	for _, n := range b.c.Nodes {
		role := "worker"
		if n.Manager {
			role = "manager"
		}
		line := ""
		for _, l := range strings.Split(status, "\n") {
			if strings.HasPrefix(l, n.Name+" ") {
				line = l
			}
		}
		if !strings.Contains(line, role) || !strings.Contains(line, "ready") || !strings.Contains(line, n.Addr.String()) {
			t.Errorf("deploy:status's line for %s is %q: want its role, state and address\n%s", n.Name, line, status)
		}
		if strings.Contains(line, "app.") {
			withApp++
		}
	}
	if on := b.tasksByNode(t, "app"); withApp != len(on) {
		t.Errorf("deploy:status shows app tasks on %d nodes, the Swarm on %d (%v)\n%s", withApp, len(on), on, status)
	}
	hist := expect(t, f, b.env, 0, "deploy:history", "e2e")
	if !strings.Contains(hist, b.c.Nodes[1].Name) || !strings.Contains(hist, b.c.Nodes[2].Name) {
		t.Errorf("deploy:history does not name the nodes the deploys started tasks on:\n%s", hist)
	}
}

// Scenario 2: a worker drained while the rollout is under way: its tasks
// move, the deploy ends 0, nothing fails.
func TestE2EMultinodeDrain(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	b := newBed(t, f, swarmtest.Options{})
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	load := b.load(t)
	time.Sleep(3 * time.Second)
	out, done := b.background(t, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	waitFor(t, out, "app: ", 3*time.Minute)
	w := b.c.Workers()[1]
	if err := b.c.Drain(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	code := <-done
	time.Sleep(2 * time.Second)
	s := load.Stop(t)
	if code != 0 {
		t.Fatalf("the deploy exited %d, want 0:\n%s", code, out.String())
	}
	zeroFailures(t, s)
	if on := b.tasksByNode(t, "app"); on[w.Name] != 0 {
		t.Errorf("the drained node still runs app tasks: %v", on)
	}
	figures(t, "2 drain a worker mid-rollout", s, code)
}

// Scenarios 3 and 4: a worker's engine killed while the rollout is under
// way (its containers run on, as in a power loss seen from the manager).
// The deploy neither hangs to its deadline nor exits 3: it completes once
// Swarm ran the replicas elsewhere (0) or restores (2), and names the node.
// Then the worker comes back: deploy:status shows it, and a deploy and a
// rollback lose nothing.
func TestE2EMultinodeKill(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	b := newBed(t, f, swarmtest.Options{})
	lostNode(t, b, "3 SIGKILL a worker's engine mid-rollout", func(w *swarmtest.Node) error { return b.c.Kill(w) }, func(w *swarmtest.Node) error { return b.c.Restart(t.Context(), w) })
}

// Scenario 5: a worker cut off (its link down) during a deploy, then
// healed: as a killed one.
func TestE2EMultinodePartition(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	b := newBed(t, f, swarmtest.Options{})
	lostNode(t, b, "5 partition a worker mid-rollout", b.c.Partition, b.c.Heal)
}

func lostNode(t *testing.T, b *bed, name string, fault, heal func(*swarmtest.Node) error) {
	f := b.f
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	load := b.load(t)
	time.Sleep(3 * time.Second)
	out, done := b.background(t, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	waitFor(t, out, "app: ", 3*time.Minute)
	w := b.c.Workers()[1]
	faultAt := time.Now()
	if err := fault(w); err != nil {
		t.Fatal(err)
	}
	downAt := make(chan time.Time, 1)
	go func() {
		if err := b.c.WaitNode(context.Background(), w, swarm.NodeStateDown); err == nil {
			downAt <- time.Now()
		}
		close(downAt)
	}()
	var code int
	select {
	case code = <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("the deploy did not end within 5 minutes of the fault:\n%s", out.String())
	}
	exitAt := time.Now()
	down := <-downAt
	t.Logf("the deploy, exit %d:\n%s", code, out.String())
	time.Sleep(2 * time.Second)
	s := load.Stop(t)
	if code != 0 && code != 2 {
		t.Fatalf("the deploy exited %d, want 0 (rescheduled) or 2 (restored):\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), w.Name) {
		t.Errorf("the deploy's output does not name the node that went down (%s):\n%s", w.Name, out.String())
	}
	// What Swarm lists after our exit; a cut-off node's tasks can still
	// read as running, since nothing hears from it.
	moved := "tasks running elsewhere by our exit"
	if on := b.tasksByNode(t, "app"); on[w.Name] > 0 {
		moved = fmt.Sprintf("Swarm still lists %d running on %s at our exit", on[w.Name], w.Name)
	} else if len(on) < 2 {
		moved = fmt.Sprintf("running on %d node(s) at our exit", len(on))
	}
	figures(t, name, s, code,
		fmt.Sprintf("node down %.1fs after the fault", secondsSince(faultAt, down)),
		moved,
		fmt.Sprintf("our exit %.1fs after the fault", exitAt.Sub(faultAt).Seconds()),
		fmt.Sprintf("%d requests failed in the window a client resolving tasks.app can reach the lost node", s.Failed+s.SlowFailed))

	// Scenario 4: the node comes back; Swarm stops what it ran.
	if err := heal(w); err != nil {
		t.Fatal(err)
	}
	if err := b.c.WaitNode(t.Context(), w, swarm.NodeStateReady); err != nil {
		t.Fatal(err)
	}
	status := expect(t, f, b.env, 0, "deploy:status", "e2e")
	if !strings.Contains(status, w.Name) {
		t.Errorf("deploy:status does not show the node that came back:\n%s", status)
	}
	load = b.load(t)
	time.Sleep(3 * time.Second)
	next := "v2.0.0"
	if code == 0 {
		next = "v1.0.0"
	}
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":"+next)
	expect(t, f, b.env, 0, "deploy:rollback", "e2e")
	time.Sleep(2 * time.Second)
	s = load.Stop(t)
	zeroFailures(t, s)
	figures(t, "4 after the node came back: a deploy and a rollback", s, 0)
}

func secondsSince(from, to time.Time) float64 {
	if to.IsZero() {
		return -1
	}
	return to.Sub(from).Seconds()
}

// Scenario 6: three managers. With the first-listed one killed, every
// target fails over to the next that answers and says so; the lock and
// the records, in the Raft store, are still there. With two of three
// lost, a deploy is refused at preflight, naming lost quorum, and changes
// nothing.
func TestE2EMultinodeManagers(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	b := newBed(t, f, swarmtest.Options{Managers: 3})
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	// Kill a manager that does not run Postgres (its volume is local), and
	// list it first.
	pg := b.tasksByNode(t, "postgres")
	var victim, other *swarmtest.Node
	var hosts []string
	for _, m := range b.c.Managers() {
		if pg[m.Name] == 0 && victim == nil {
			victim = m
			continue
		}
		if pg[m.Name] == 0 && other == nil {
			other = m
		}
		hosts = append(hosts, m.Host)
	}
	b.writeEnv(t, append([]string{victim.Host}, hosts...))
	if err := b.c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	// Once the others see it down: a node lost during the rollout is
	// scenario 3's (exit 0 or 2); this one is about the endpoints.
	if err := b.c.WaitNode(t.Context(), victim, swarm.NodeStateDown); err != nil {
		t.Fatal(err)
	}
	out := expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	if !strings.Contains(out, "passed over: "+victim.Host+" does not answer") {
		t.Errorf("the deploy does not say it passed over the dead manager:\n%s", out)
	}
	hist := expect(t, f, b.env, 0, "deploy:history", "e2e")
	if !strings.Contains(hist, "v1.0.0") || !strings.Contains(hist, "v2.0.0") {
		t.Errorf("the records are not all there after a manager was lost:\n%s", hist)
	}
	if lock := expect(t, f, b.env, 0, "deploy:lock", "e2e"); !strings.Contains(lock, "free") {
		t.Errorf("deploy:lock: %s", lock)
	}
	// A second manager lost: no quorum.
	if err := b.c.Kill(other); err != nil {
		t.Fatal(err)
	}
	out = expect(t, f, b.env, 1, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if !strings.Contains(out, "lost quorum") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("a deploy without quorum is not refused naming it:\n%s", out)
	}
	figures(t, "6 three managers: one killed, then two", loadSummary{}, 1, "failover said; lost quorum refused at preflight")
}

// Scenario 7: the migration job lands on a worker; its container is
// removed there too.
func TestE2EMultinodeMigrationOnWorker(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	workers := filepath.Join(f.tmp, "on-workers.yml")
	if err := os.WriteFile(workers, []byte("version: \"3.9\"\nservices:\n  app:\n    deploy:\n      placement:\n        constraints: [node.role == worker]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBed(t, f, swarmtest.Options{}, workers)
	out := expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if !strings.Contains(out, "Migrations: done") {
		t.Fatalf("no migration ran:\n%s", out)
	}
	// Swarm removes task containers in the background; give it a moment.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left []string
		for _, n := range b.c.Nodes {
			cs, err := b.c.Client(n).ContainerList(t.Context(), client.ContainerListOptions{All: true,
				Filters: client.Filters{}.Add("label", "com.docker.swarm.service.name")})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs.Items {
				if strings.HasPrefix(c.Labels["com.docker.swarm.service.name"], b.stack+"_migrate") {
					left = append(left, n.Name+": "+c.Labels["com.docker.swarm.service.name"]+" ("+string(c.State)+")")
				}
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job containers left: %v", left)
		}
		time.Sleep(time.Second)
	}
}

// Scenario 8: a placement constraint no ready node satisfies is refused at
// preflight, changing nothing; once a node has the label, it deploys.
func TestE2EMultinodePlacement(t *testing.T) {
	t.Parallel()
	f := setupBeds(t)
	zone := filepath.Join(f.tmp, "zone-east.yml")
	if err := os.WriteFile(zone, []byte("version: \"3.9\"\nservices:\n  app:\n    deploy:\n      placement:\n        constraints: [node.labels.zone == east]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBed(t, f, swarmtest.Options{}, zone)
	out := expect(t, f, b.env, 1, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if !strings.Contains(out, `no ready node matches its placement constraints ["node.labels.zone == east"]`) {
		t.Errorf("the refusal does not name the constraint:\n%s", out)
	}
	cli := b.manager(t)
	if ss, err := cli.ServiceList(t.Context(), client.ServiceListOptions{}); err != nil || len(ss.Items) != 0 {
		t.Fatalf("a refused deploy made services: %v %v", ss.Items, err)
	}
	w := b.c.Workers()[0]
	n, err := cli.NodeInspect(t.Context(), w.ID, client.NodeInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := n.Node.Spec
	spec.Labels = map[string]string{"zone": "east"}
	if _, err := cli.NodeUpdate(t.Context(), w.ID, client.NodeUpdateOptions{Version: n.Node.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	expect(t, f, b.env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if on := b.tasksByNode(t, "app"); on[w.Name] != 3 || len(on) != 1 {
		t.Errorf("app's tasks are on %v, want all three on %s", on, w.Name)
	}

}
