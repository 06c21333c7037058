package swarmtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Faults, one call each. They act on one node and return once done; none
// waits for the Swarm to notice (WaitNode does).

// Kill ends n's engine with SIGKILL: a power loss, as the rest of the
// Swarm sees it. Its containerd goes with it; the shims and containers
// keep running until Restart (the engine, without live-restore, stops
// what it finds still running as it starts) or the end of the bed. Other
// nodes reach those containers over overlay networks only until gossip
// gives the node up (about five seconds here; see the package's tests).
func (c *Cluster) Kill(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return c.signalEngine(n, syscall.SIGKILL, 10*time.Second)
}

// Stop ends n's engine with SIGTERM: a graceful shutdown, which stops its
// containers (within dockerd's shutdown timeout) and takes the node out of
// the Swarm's view as down.
func (c *Cluster) Stop(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return c.signalEngine(n, syscall.SIGTERM, time.Minute)
}

// Restart starts n's engine again on the same data root (after Kill or
// Stop; a running engine is stopped first) and waits until a manager sees
// the node ready and, for a manager, reachable in the Raft cluster again
// (which a loaded machine reports seconds after ready).
func (c *Cluster) Restart(ctx context.Context, n *Node) error {
	n.mu.Lock()
	if n.running() {
		if err := c.signalEngine(n, syscall.SIGTERM, time.Minute); err != nil {
			n.mu.Unlock()
			return err
		}
	}
	err := c.startEngine(ctx, n)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.WaitNode(ctx, n, swarm.NodeStateReady); err != nil || !n.Manager {
		return err
	}
	return c.waitNode(ctx, n, "a reachable manager", func(node swarm.Node) string {
		if ms := node.ManagerStatus; ms == nil || ms.Reachability != swarm.ReachabilityReachable {
			return fmt.Sprintf("manager status %+v", ms)
		}
		return ""
	})
}

// Partition cuts n off the hub (its port on the hub's bridge goes down):
// the rest of the Swarm loses it, and it loses them; its engine and
// containers run on.
func (c *Cluster) Partition(n *Node) error {
	return c.make(func() error { return run(c.l.linkCommand(n.index, false)...) })
}

// Heal plugs a partitioned n back in.
func (c *Cluster) Heal(n *Node) error {
	return c.make(func() error { return run(c.l.linkCommand(n.index, true)...) })
}

// Drain makes n's availability drain: Swarm moves its tasks elsewhere.
func (c *Cluster) Drain(ctx context.Context, n *Node) error {
	return c.setAvailability(ctx, n, swarm.NodeAvailabilityDrain)
}

// Activate makes n's availability active again. Swarm does not move tasks
// back by itself.
func (c *Cluster) Activate(ctx context.Context, n *Node) error {
	return c.setAvailability(ctx, n, swarm.NodeAvailabilityActive)
}

func (c *Cluster) setAvailability(ctx context.Context, n *Node, a swarm.NodeAvailability) error {
	_, cli, err := c.Manager(ctx)
	if err != nil {
		return err
	}
	res, err := cli.NodeInspect(ctx, n.ID, client.NodeInspectOptions{})
	if err != nil {
		return fmt.Errorf("%s: inspect: %w", n.Name, err)
	}
	spec := res.Node.Spec
	spec.Availability = a
	if _, err := cli.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: res.Node.Version, Spec: spec}); err != nil {
		return fmt.Errorf("%s: make it %s: %w", n.Name, a, err)
	}
	return nil
}

// Forward makes 127.0.0.1:port of this machine reachable at 127.0.0.1:port
// on every node: a listener in each node's network namespace whose
// connections this process carries to the machine's loopback. Give it the
// port of a registry on the machine (deploy:init's, or one a test starts)
// and every engine pulls the same references from it, as a loopback
// registry that needs no --insecure-registry. A partitioned node still
// reaches it.
func (c *Cluster) Forward(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, n := range c.Nodes {
		var l net.Listener
		if err := c.make(func() error {
			var err error
			l, err = listenIn(n.NetNS, addr)
			return err
		}); err != nil {
			return fmt.Errorf("%s: forward %s: %w", n.Name, addr, err)
		}
		if err := c.fwd.serve(l, addr); err != nil {
			return err
		}
	}
	return nil
}

// signalEngine sends sig to n's dockerd and waits up to d for it and its
// containerd to end. The caller holds n.mu.
func (c *Cluster) signalEngine(n *Node, sig syscall.Signal, d time.Duration) error {
	p := n.engine.Load()
	if p == nil || p.exited() {
		return fmt.Errorf("%s: its engine is not running", n.Name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal dockerd: %w", n.Name, err)
	}
	if !p.wait(d) {
		_ = p.cmd.Process.Kill()
		p.wait(5 * time.Second)
		n.engine.Store(nil)
		return fmt.Errorf("%s: dockerd still ran %s after %v; killed it", n.Name, d, sig)
	}
	n.engine.Store(nil)
	// dockerd's containerd ends with it (dockerd starts it with a parent
	// death signal, and stops it on a graceful shutdown); a containerd
	// left over would keep the node half alive, so make sure.
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := c.engineProcesses(n, "containerd")
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: containerd %v outlives dockerd", n.Name, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Processes lists the live processes of node n: its engine's (dockerd,
// containerd, the shims, the holder of its namespaces: sleep) and its
// containers', as found in its cgroups and its network namespace.
func (c *Cluster) Processes(n *Node) []int {
	return c.l.processesOf(func(name string) bool { return name == n.Name })
}

// engineProcesses lists the live processes named name in n's engine
// cgroup.
func (c *Cluster) engineProcesses(n *Node, name string) []int {
	data, _ := os.ReadFile(filepath.Join(c.cgroups, c.l.engineCgroup(n.index), "cgroup.procs"))
	var out []int
	for f := range strings.FieldsSeq(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && comm(pid) == name && !zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}
