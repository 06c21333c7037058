// Package swarmtest brings up a multi-node Docker Swarm on this machine
// for tests: one dockerd per network namespace, each with its own
// hostname, data root, exec root, socket and cgroup parent, all plugged
// into a hub bridge, so that overlay networks really cross between nodes
// and a node can be killed, stopped, cut off or drained on its own. The
// machine's own engine is not involved.
//
//	c := swarmtest.Start(t, swarmtest.Options{Forward: []int{5000}})
//	cli := c.Client(c.Managers()[0]) // or DOCKER_HOST=c.Nodes[0].Host
//	...
//	c.Kill(c.Workers()[0])           // SIGKILL of its engine
//
// It needs root, ip (iproute2), nsenter, unshare, dockerd, containerd and
// runc, and a kernel with VXLAN. It runs only with TEST_MULTINODE=1 (it
// skips otherwise), and skips through dockertest.Missing (a failure under
// TEST_REQUIRE_DOCKER=1) where what it needs is missing. Everything it
// makes is named swt-<bed>...; it is removed by t.Cleanup, by a handler of
// SIGINT and SIGTERM, shortly before the test binary's -timeout, and, after
// a crash, by the next Start or by SweepStale (.ci/multinode.sh).
//
// The kernels here have no IPVS: services use endpoint_mode dnsrr and
// host-mode ports; the routing mesh and VIPs do not work.
package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/dockertest"
)

// Options shape a test bed. The zero value is one manager and two workers.
type Options struct {
	Managers int // at least 1
	Workers  int
	// Forward lists ports of this machine's loopback (a registry at
	// 127.0.0.1:5000, say) to make reachable at the same address on every
	// node, so that image references are the same everywhere; see
	// Cluster.Forward.
	Forward []int
}

func (o Options) withDefaults() (Options, error) {
	if o.Managers == 0 && o.Workers == 0 {
		o.Managers, o.Workers = 1, 2
	}
	if o.Managers < 1 || o.Workers < 0 || o.Managers+o.Workers > maxNodes {
		return o, fmt.Errorf("%d managers and %d workers: want at least 1 manager and at most %d nodes", o.Managers, o.Workers, maxNodes)
	}
	return o, nil
}

// Cluster is a running test bed.
type Cluster struct {
	Name    string       // swt-<bed>: the prefix of everything the bed makes
	Nodes   []*Node      // managers first
	Subnet  netip.Prefix // the hub's
	Gateway netip.Addr   // this machine's address on the hub

	l       layout
	lock    *os.File
	cgroups string // the tracking hierarchy's root

	// mu: making anything on the machine holds it for reading, Close for
	// writing; once closed, nothing more is made.
	mu     sync.RWMutex
	closed bool

	fwd       forwarder
	closeOnce sync.Once
	closeErr  error
}

// Node is one engine of a test bed.
type Node struct {
	Name         string     // hostname, network namespace and cgroup parent: swt-<bed>-n<i>
	Manager      bool       // a manager, else a worker
	ID           string     // Swarm's node ID
	Addr         netip.Addr // on the hub: Swarm listens and advertises here
	Host         string     // DOCKER_HOST of its engine: unix://<Dir>/docker.sock
	Dir          string     // data root, exec root, socket, config and dockerd.log
	DataRoot     string
	ExecRoot     string
	CgroupParent string
	NetNS        string // the network namespace's file (/run/netns/<Name>)

	index  int
	mu     sync.Mutex // faults, one at a time
	holder *proc
	engine atomic.Pointer[proc] // nil while the engine is down
	cli    *client.Client
}

// Start brings up a test bed and tears it down when t ends. It skips t
// without TEST_MULTINODE=1, in -short mode, and where the machine cannot
// have one (then through dockertest.Missing, with the reason).
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		// plain skip: -short asks for the unit tests only.
		t.Skip("multi-node test bed: skipped in -short mode")
	}
	if os.Getenv("TEST_MULTINODE") != "1" {
		// plain skip: TEST_MULTINODE unset is an explicit opt-out (as
		// TEST_SWARM is): the bed runs several engines for minutes.
		t.Skip("set TEST_MULTINODE=1 to bring up a multi-node Swarm test bed (several dockerd in network namespaces; root)")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("swarmtest: %v", err)
	}
	if reason := missing(); reason != "" {
		dockertest.Missing(t, reason)
	}
	began := time.Now()
	c, skip, err := start(opts)
	if c != nil {
		stopWatch := c.watchDeadline(t)
		t.Cleanup(func() {
			stopWatch()
			if t.Failed() {
				c.logTails(t)
			}
			c.mu.RLock()
			closed := c.closed
			c.mu.RUnlock()
			began := time.Now()
			if err := c.Close(); err != nil {
				t.Errorf("swarmtest: tear down %s: %v", c.Name, err)
				return
			}
			if !closed {
				t.Logf("swarmtest: %s torn down in %.1fs", c.Name, time.Since(began).Seconds())
			}
		})
	}
	if skip != "" {
		dockertest.Missing(t, skip)
	}
	if err != nil {
		t.Fatalf("swarmtest: bring up %d managers and %d workers: %v", opts.Managers, opts.Workers, err)
	}
	t.Logf("swarmtest: %s up in %.1fs: %d managers, %d workers on %s", c.Name, time.Since(began).Seconds(), opts.Managers, opts.Workers, c.Subnet)
	return c
}

// missing says what the machine lacks for a test bed, if anything.
func missing() string {
	if os.Geteuid() != 0 {
		return "a multi-node test bed needs root (network namespaces, cgroups, dockerd)"
	}
	for _, bin := range []string{"ip", "nsenter", "unshare", "dockerd", "containerd", "runc", "sh", "sleep", "grep", "cut"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "a multi-node test bed needs " + bin + " on PATH (dockerd, containerd and runc come with Debian's docker.io; ip with iproute2; nsenter and unshare with util-linux)"
		}
	}
	return ""
}

var sweepOnce sync.Once

// start makes the bed. It returns the cluster as soon as it owns
// anything, so that the caller can tear down what a failed bring-up made;
// skip is the reason the machine cannot have a bed.
func start(opts Options) (c *Cluster, skip string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sweepOnce.Do(func() {
		// What crashed runs left, before taking a bed number.
		if swept, err := SweepStale(); len(swept) > 0 || err != nil {
			fmt.Fprintf(os.Stderr, "swarmtest: removed stale test beds %v (err: %v)\n", swept, err)
		}
	})
	root, err := trackingRoot()
	if err != nil {
		return nil, "multi-node test bed: " + err.Error(), nil
	}
	l, lock, err := allocate()
	if err != nil {
		return nil, "", err
	}
	c = &Cluster{Name: l.name(), Subnet: l.subnet(), Gateway: l.gateway(), l: l, lock: lock, cgroups: root}
	register(c)
	if err := l.sweep(); err != nil {
		return c, "", fmt.Errorf("remove a crashed run's %s: %w", l.name(), err)
	}
	if err := c.make(func() error { return os.MkdirAll(l.dir(), 0o700) }); err != nil {
		return c, "", err
	}
	if err := c.makeAll(l.hubCommands()); err != nil {
		if notPermitted(err) {
			return c, "multi-node test bed: network namespaces are not permitted here: " + err.Error(), nil
		}
		return c, "", fmt.Errorf("hub: %w", err)
	}
	if err := c.makeAll(l.vxlanProbe()); err != nil {
		return c, "multi-node test bed: the kernel offers no VXLAN, which overlay networks need: " + err.Error(), nil
	}
	var nodes []*Node
	for i := 1; i <= opts.Managers+opts.Workers; i++ {
		d := l.nodeDir(i)
		nodes = append(nodes, &Node{
			Name: l.node(i), Manager: i <= opts.Managers, Addr: l.addr(i),
			Host: "unix://" + filepath.Join(d, "docker.sock"),
			Dir:  d, DataRoot: filepath.Join(d, "data"), ExecRoot: filepath.Join(d, "exec"),
			CgroupParent: "/" + l.node(i), NetNS: l.netnsPath(l.node(i)), index: i,
		})
	}
	// Under the lock: a teardown from the signal handler reads them.
	c.mu.Lock()
	c.Nodes = nodes
	c.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for k, n := range c.Nodes {
		wg.Go(func() { errs[k] = c.bringUp(ctx, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, "", err
	}
	for _, port := range opts.Forward {
		if err := c.Forward(port); err != nil {
			return c, "", err
		}
	}
	return c, "", c.formSwarm(ctx)
}

// make runs fn, which makes something on the machine, unless the bed is
// closed already.
func (c *Cluster) make(fn func() error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errors.New("the test bed is closed")
	}
	return fn()
}

func (c *Cluster) makeAll(plan [][]string) error {
	for _, argv := range plan {
		if err := c.make(func() error { return run(argv...) }); err != nil {
			return err
		}
	}
	return nil
}

// bringUp makes node n: its namespace and link, its holder and its
// engine, and waits for the engine to answer.
func (c *Cluster) bringUp(ctx context.Context, n *Node) error {
	if err := c.makeAll(c.l.nodeCommands(n.index)); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	cfg, err := c.l.daemonConfig(n.index)
	if err != nil {
		return err
	}
	if err := c.make(func() error {
		if err := os.MkdirAll(n.Dir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "daemon.json"), cfg, 0o600); err != nil {
			return err
		}
		return os.MkdirAll(filepath.Join(c.cgroups, c.l.engineCgroup(n.index)), 0o755)
	}); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := c.startHolder(n); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := c.make(func() error {
		var err error
		n.cli, err = client.New(client.WithHost(n.Host))
		return err
	}); err != nil {
		return fmt.Errorf("%s: client: %w", n.Name, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return c.startEngine(ctx, n)
}

func (c *Cluster) procsFile(n *Node) string {
	return filepath.Join(c.cgroups, c.l.engineCgroup(n.index), "cgroup.procs")
}

// startHolder starts the process that holds n's mount and UTS namespaces,
// and waits for it to have set them up.
func (c *Cluster) startHolder(n *Node) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logf, err := os.Create(filepath.Join(n.Dir, "holder.log"))
	if err != nil {
		_ = w.Close()
		return err
	}
	defer logf.Close()
	argv := c.l.holderArgv(n.index, c.procsFile(n))
	// It lives as long as the bed, not as any one call's context.
	cmd := exec.CommandContext(context.Background(), argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = w, logf
	err = c.make(func() error {
		p, err := launch(cmd)
		n.holder = p
		return err
	})
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("start the holder: %w", err)
	}
	_ = r.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 6)
	k, err := r.Read(buf)
	if err == nil && string(buf[:k]) != "ready\n" {
		err = fmt.Errorf("it said %q", buf[:k])
	}
	if err != nil {
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("the holder of its namespaces did not start (%w): %s", err, strings.TrimSpace(string(log)))
	}
	return nil
}

// startEngine starts n's dockerd and waits for it to answer. The caller
// holds n.mu.
func (c *Cluster) startEngine(ctx context.Context, n *Node) error {
	logf, err := os.OpenFile(filepath.Join(n.Dir, "dockerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// A pid file left by a killed engine would stop the next one if its
	// number had been taken by another process meanwhile.
	_ = os.Remove(filepath.Join(n.Dir, "dockerd.pid"))
	argv := c.l.engineArgv(n.index, n.holder.cmd.Process.Pid, c.procsFile(n))
	// It lives until a fault or the teardown, not as ctx (the bring-up's).
	cmd := exec.CommandContext(context.Background(), argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(n.Dir, "home")}
	if err := c.make(func() error {
		p, err := launch(cmd)
		n.engine.Store(p)
		return err
	}); err != nil {
		return fmt.Errorf("%s: start dockerd: %w", n.Name, err)
	}
	return c.waitEngine(ctx, n)
}

// waitEngine waits for n's engine to answer its API.
func (c *Cluster) waitEngine(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-n.engine.Load().done:
			log := filepath.Join(n.Dir, "dockerd.log")
			return fmt.Errorf("%s: dockerd exited (%w); the end of %s:\n%s", n.Name, exitError(n.engine.Load().err), log, tail(log, 15))
		case <-ctx.Done():
			return fmt.Errorf("%s: dockerd does not answer at %s: %w", n.Name, n.Host, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// formSwarm makes the first manager a Swarm, joins the others to it, and
// waits for every node to be ready.
func (c *Cluster) formSwarm(ctx context.Context) error {
	first := c.Nodes[0]
	pool := netip.MustParsePrefix(swarmPool)
	_, err := first.cli.SwarmInit(ctx, client.SwarmInitOptions{
		ListenAddr:      netip.AddrPortFrom(first.Addr, swarmPort).String(),
		AdvertiseAddr:   first.Addr.String(),
		DefaultAddrPool: []netip.Prefix{pool},
		SubnetSize:      24,
		// A node is down after about three missed heartbeats: three
		// seconds instead of Swarm's default fifteen.
		Spec: swarm.Spec{Dispatcher: swarm.DispatcherConfig{HeartbeatPeriod: time.Second}},
	})
	if err != nil {
		return fmt.Errorf("%s: swarm init: %w", first.Name, err)
	}
	sw, err := first.cli.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return fmt.Errorf("%s: swarm inspect: %w", first.Name, err)
	}
	join := func(n *Node) error {
		token := sw.Swarm.JoinTokens.Worker
		if n.Manager {
			token = sw.Swarm.JoinTokens.Manager
		}
		_, err := n.cli.SwarmJoin(ctx, client.SwarmJoinOptions{
			ListenAddr:    netip.AddrPortFrom(n.Addr, swarmPort).String(),
			AdvertiseAddr: n.Addr.String(),
			RemoteAddrs:   []string{netip.AddrPortFrom(first.Addr, swarmPort).String()},
			JoinToken:     token,
		})
		if err != nil {
			return fmt.Errorf("%s: swarm join: %w", n.Name, err)
		}
		return nil
	}
	// Managers one by one (each changes the Raft membership), then the
	// workers together.
	var workers []*Node
	for _, n := range c.Nodes[1:] {
		if !n.Manager {
			workers = append(workers, n)
			continue
		}
		if err := join(n); err != nil {
			return err
		}
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for k, n := range workers {
		wg.Go(func() { errs[k] = join(n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		info, err := n.cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			return fmt.Errorf("%s: info: %w", n.Name, err)
		}
		n.ID = info.Info.Swarm.NodeID
	}
	for _, n := range c.Nodes {
		if err := c.WaitNode(ctx, n, swarm.NodeStateReady); err != nil {
			return err
		}
	}
	return nil
}

// Managers returns the manager nodes.
func (c *Cluster) Managers() []*Node { return c.role(true) }

// Workers returns the worker nodes.
func (c *Cluster) Workers() []*Node { return c.role(false) }

func (c *Cluster) role(manager bool) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Manager == manager {
			out = append(out, n)
		}
	}
	return out
}

// Client returns a client of n's engine (closed with the bed). It keeps
// working across a Kill and Restart of the engine.
func (c *Cluster) Client(n *Node) *client.Client { return n.cli }

// Manager returns a manager whose engine runs and answers as a manager
// of a Swarm with a leader (the Raft quorum holds), with its client.
func (c *Cluster) Manager(ctx context.Context) (*Node, *client.Client, error) {
	var errs []error
	for _, n := range c.Managers() {
		if !n.running() {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := n.cli.NodeList(qctx, client.NodeListOptions{})
		cancel()
		if err == nil {
			return n, n.cli, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	if len(errs) == 0 {
		return nil, nil, errors.New("no manager's engine is running")
	}
	return nil, nil, fmt.Errorf("no manager answers: %w", errors.Join(errs...))
}

// WaitNode waits until a manager sees n in state (ready, down).
func (c *Cluster) WaitNode(ctx context.Context, n *Node, state swarm.NodeState) error {
	return c.waitNode(ctx, n, string(state), func(node swarm.Node) string {
		if got := node.Status.State; got != state {
			return "it is " + string(got)
		}
		return ""
	})
}

// waitNode waits, for at most 2 minutes, until a manager's view of n
// satisfies check (which returns what is still wrong, or "").
func (c *Cluster) waitNode(ctx context.Context, n *Node, want string, check func(swarm.Node) string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last string
	for {
		if _, cli, err := c.Manager(ctx); err != nil {
			last = err.Error()
		} else if res, err := cli.NodeInspect(ctx, n.ID, client.NodeInspectOptions{}); err != nil {
			last = err.Error()
		} else if last = check(res.Node); last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not %s: %s", n.Name, want, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close tears the bed down now (t.Cleanup does it otherwise) and checks
// that nothing of it is left on the machine. It can be called again.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.fwd.close()
		for _, n := range c.Nodes {
			if n.cli != nil {
				_ = n.cli.Close()
			}
		}
		errs := []error{c.l.sweep()}
		for _, n := range c.Nodes {
			for _, p := range []*proc{n.holder, n.engine.Load()} {
				if p != nil && !p.wait(10*time.Second) {
					errs = append(errs, fmt.Errorf("%s: process %d did not end", n.Name, p.cmd.Process.Pid))
				}
			}
		}
		if left := c.l.leftovers(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
		}
		if c.lock != nil {
			release(c.lock)
		}
		unregister(c)
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// watchDeadline tears the bed down shortly before the test binary's
// -timeout would end the process without running any cleanup.
func (c *Cluster) watchDeadline(t testing.TB) (stop func()) {
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return func() {}
	}
	deadline, ok := d.Deadline()
	if !ok {
		return func() {}
	}
	left := time.Until(deadline)
	margin := min(15*time.Second, left/10)
	timer := time.AfterFunc(left-margin, func() {
		fmt.Fprintf(os.Stderr, "swarmtest: the test binary's -timeout is near: tearing %s down\n", c.Name)
		if err := c.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "swarmtest: tear down %s: %v\n", c.Name, err)
		}
	})
	return func() { timer.Stop() }
}

// logTails logs the end of each engine's log, for a failed test.
func (c *Cluster) logTails(t testing.TB) {
	for _, n := range c.Nodes {
		t.Logf("swarmtest: the end of %s's dockerd.log:\n%s", n.Name, tail(filepath.Join(n.Dir, "dockerd.log"), 30))
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// proc is a child process and its end.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// launch starts cmd. Should this process die without tearing down, the
// child is killed with it (the namespaces' holders and the engines; the
// next Start sweeps the rest).
func launch(cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// The parent death signal fires when the thread that started the child
// ends, not the process (golang/go#27505), and Go ends threads: one
// locked by a goroutine that returns (as inNetNS leaves one that cannot
// get out of a namespace). So children are started from one thread,
// locked for the life of the process.
var (
	spawnOnce sync.Once
	spawns    = make(chan spawnRequest)
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for r := range spawns {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawns <- spawnRequest{cmd, done}
	return <-done
}

// exitError is how a process that should not have ended ended.
func exitError(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (n *Node) running() bool {
	p := n.engine.Load()
	return p != nil && !p.exited()
}

func (n *Node) String() string { return n.Name + " (" + n.Addr.String() + ")" }
