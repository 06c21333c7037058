package swarmtest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// Everything a test bed makes is named from its number, so that a bed can
// be found and removed again from its names alone, by the process that
// made it or by a later one after a crash (see sweep.go).
const (
	// Prefix starts the name of every namespace, link, cgroup and directory
	// a test bed makes.
	Prefix = "swt-"
	// StateDir holds the beds' lock files and, one directory per bed, the
	// nodes' data roots, exec roots, sockets and logs.
	StateDir = "/tmp/swarmtest"
	// maxBeds bounds the beds alive at once on a machine; bed b's hub is
	// 172.16.b.0/24.
	maxBeds = 127
	// maxNodes bounds a bed's nodes: node i is 172.16.b.(10+i).
	maxNodes = 20
	// swarmPool is where the nodes' Swarm takes its overlay subnets: in
	// 172.16.0.0/16, which none of Docker's default pools touches (the
	// machine's engine takes 172.17-31/16 and 192.168/16 for its bridges,
	// 10.0.0.0/8 for a Swarm of its own), and apart from the hubs below it.
	swarmPool = "172.16.128.0/17"
	// hubBridge is the hub's bridge, inside the hub's own namespace.
	hubBridge = "br0"
	// nodeLink is a node's end of its veth, inside the node's namespace.
	nodeLink = "eth0"
	// swarmPort is where managers listen for the Swarm's control plane.
	swarmPort = 2377
)

// layout names and addresses the parts of bed number bed.
type layout struct{ bed int }

func (l layout) name() string     { return Prefix + strconv.Itoa(l.bed) }
func (l layout) hubNS() string    { return l.name() + "-hub" }
func (l layout) rootLink() string { return l.name() + "-r" }
func (l layout) node(i int) string {
	return l.name() + "-n" + strconv.Itoa(i)
}

// hubPort is node i's end of its veth, in the hub's namespace.
func (l layout) hubPort(i int) string { return "n" + strconv.Itoa(i) }

func (l layout) subnet() netip.Prefix { return netip.PrefixFrom(l.host(0), 24) }

// gateway is this machine's address on the hub.
func (l layout) gateway() netip.Addr { return l.host(1) }

func (l layout) addr(i int) netip.Addr { return l.host(10 + i) }

// host is 172.16.<bed>.<h>: bed is at most maxBeds and h at most
// 10+maxNodes, so both fit in a byte.
func (l layout) host(h int) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 16, byte(l.bed), byte(h)}) //nolint:gosec // bounded as said above
}

func (l layout) dir() string          { return filepath.Join(StateDir, l.name()) }
func (l layout) lockPath() string     { return filepath.Join(StateDir, l.name()+".lock") }
func (l layout) nodeDir(i int) string { return filepath.Join(l.dir(), "n"+strconv.Itoa(i)) }
func (l layout) netnsPath(ns string) string {
	return filepath.Join("/run/netns", ns)
}

// engineCgroup is where node i's engine and its containerd run, beside
// its containers (cgroup parent /<node>), under the cgroup root that
// tracks processes: how teardown finds every process of a node.
func (l layout) engineCgroup(i int) string { return "/" + l.node(i) + "/engine" }

// bedOf reads the bed number out of a name made above ("swt-12",
// "swt-12-n3", "swt-12.lock").
func bedOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end == -1 {
		end = len(rest)
	}
	if end == 0 || (end < len(rest) && rest[end] != '-' && rest[end] != '.') || (end > 1 && rest[0] == '0') {
		return 0, false
	}
	b, err := strconv.Atoi(rest[:end])
	if err != nil || b < 1 || b > maxBeds {
		return 0, false
	}
	return b, true
}

// hubCommands make the hub: a bridge in a namespace of its own (in the
// root namespace, Docker's FORWARD DROP policy with br_netfilter would drop
// what the bridge carries), and a veth from the root namespace to it, for
// this machine's own address on the hub.
func (l layout) hubCommands() [][]string {
	hub := l.hubNS()
	return [][]string{
		{"ip", "netns", "add", hub},
		{"ip", "-n", hub, "link", "set", "lo", "up"},
		{"ip", "-n", hub, "link", "add", hubBridge, "type", "bridge"},
		{"ip", "-n", hub, "link", "set", hubBridge, "up"},
		{"ip", "link", "add", l.rootLink(), "type", "veth", "peer", "name", "root", "netns", hub},
		{"ip", "addr", "add", l.gateway().String() + "/24", "dev", l.rootLink()},
		{"ip", "link", "set", l.rootLink(), "up"},
		{"ip", "-n", hub, "link", "set", "root", "master", hubBridge, "up"},
	}
}

// vxlanProbe asks the kernel for a VXLAN link (what overlay networks are
// made of) in the hub, and removes it again.
func (l layout) vxlanProbe() [][]string {
	return [][]string{
		{"ip", "-n", l.hubNS(), "link", "add", "vxprobe", "type", "vxlan", "id", "42", "dstport", "4789"},
		{"ip", "-n", l.hubNS(), "link", "del", "vxprobe"},
	}
}

// nodeCommands make node i's namespace and plug it into the hub. The veth
// is made with each end in its namespace, so it never shows in the root
// one. No default route: a node reaches the hub and nothing else.
func (l layout) nodeCommands(i int) [][]string {
	ns, hub := l.node(i), l.hubNS()
	return [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", hub, "link", "add", l.hubPort(i), "type", "veth", "peer", "name", nodeLink, "netns", ns},
		{"ip", "-n", hub, "link", "set", l.hubPort(i), "master", hubBridge, "up"},
		{"ip", "-n", ns, "addr", "add", l.addr(i).String() + "/24", "dev", nodeLink},
		{"ip", "-n", ns, "link", "set", nodeLink, "up"},
	}
}

// linkCommand sets node i's port on the hub up or down: a partition is
// a cable pulled at the switch.
func (l layout) linkCommand(i int, up bool) []string {
	state := "down"
	if up {
		state = "up"
	}
	return []string{"ip", "-n", l.hubNS(), "link", "set", l.hubPort(i), state}
}

// holderScript runs as the holder of a node's mount and UTS namespaces:
// a process that lives as long as the node, so that an engine killed and
// started again finds the same /run (where containerd keeps its shims'
// sockets) and the same hostname. It joins the engine cgroup ($1), drops
// its copies of other network namespaces' mounts (they would keep those
// namespaces alive), hides the machine's /run (the machine's
// containerd.sock, which dockerd would otherwise use instead of starting
// its own, and the machine's /run/docker), and names the node ($2).
const holderScript = `set -e
echo $$ >"$1"
grep ' - nsfs ' /proc/self/mountinfo | cut -d' ' -f5 | while read -r m; do umount -l "$m" || true; done
mount -t tmpfs -o mode=0755 swarmtest-run /run
hostname "$2"
echo ready
exec sleep infinity`

// holderArgv starts node i's holder: in the node's network namespace,
// with a private mount namespace and UTS namespace of its own. procs is
// the engine cgroup's cgroup.procs file.
func (l layout) holderArgv(i int, procs string) []string {
	return []string{
		"nsenter", "--net=" + l.netnsPath(l.node(i)), "--",
		"unshare", "--mount", "--uts", "--propagation", "private", "--",
		"sh", "-c", holderScript, "swarmtest-holder", procs, l.node(i),
	}
}

// engineArgv starts node i's dockerd in the namespaces of its holder
// (process holder), having joined the engine cgroup (procs) first so that
// its containerd and shims are found there too.
func (l layout) engineArgv(i, holder int, procs string) []string {
	d := l.nodeDir(i)
	return []string{
		"sh", "-c", `echo $$ >"$1" && shift && exec "$@"`, "swarmtest-engine", procs,
		"nsenter", "--target", strconv.Itoa(holder), "--mount", "--uts", "--net", "--",
		"dockerd",
		"--data-root", filepath.Join(d, "data"),
		"--exec-root", filepath.Join(d, "exec"),
		"--pidfile", filepath.Join(d, "dockerd.pid"),
		"--host", "unix://" + filepath.Join(d, "docker.sock"),
		"--config-file", filepath.Join(d, "daemon.json"),
		// The hub is a node's only way out, so no NAT and no iptables rules
		// (overlays, docker_gwbridge, docker0 and host-mode ports, through
		// docker-proxy, work without them).
		"--iptables=false", "--ip-masq=false",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", "/" + l.node(i),
	}
}

// daemonConfig is node i's dockerd configuration file: its own, so the
// machine's /etc/docker/daemon.json does not apply, and its own identity
// key (by default every engine would read the machine's
// /etc/docker/key.json and share one engine ID).
func (l layout) daemonConfig(i int) ([]byte, error) {
	b, err := json.Marshal(map[string]any{
		"deprecated-key-path": filepath.Join(l.nodeDir(i), "key.json"),
	})
	if err != nil {
		return nil, fmt.Errorf("daemon config of %s: %w", l.node(i), err)
	}
	return b, nil
}
