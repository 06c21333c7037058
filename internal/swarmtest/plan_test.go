package swarmtest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/plan.golden")

// TestPlan pins every command and argument a bed runs, for bed 7 with
// node 2 and its engine cgroup at a given path: a change shows as a diff
// of testdata/plan.golden (go test -run TestPlan -update rewrites it).
func TestPlan(t *testing.T) {
	l := layout{7}
	var b bytes.Buffer
	section := func(name string, plan [][]string) {
		fmt.Fprintf(&b, "# %s\n", name)
		for _, argv := range plan {
			words := make([]string, len(argv))
			for i, a := range argv {
				words[i] = a
				if strings.ContainsAny(a, " \n\t\"'$") {
					words[i] = strconv.Quote(a)
				}
			}
			fmt.Fprintln(&b, strings.Join(words, " "))
		}
	}
	section("hub", l.hubCommands())
	section("vxlan probe", l.vxlanProbe())
	section("node 2", l.nodeCommands(2))
	section("partition node 2", [][]string{l.linkCommand(2, false)})
	section("heal node 2", [][]string{l.linkCommand(2, true)})
	section("holder of node 2", [][]string{l.holderArgv(2, "/cg/procs")})
	section("engine of node 2 (holder 4242)", [][]string{l.engineArgv(2, 4242, "/cg/procs")})
	cfg, err := l.daemonConfig(2)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "# daemon.json of node 2\n%s\n", cfg)
	fmt.Fprintf(&b, "# names\nbed %s hub %s root link %s node %s port %s\n", l.name(), l.hubNS(), l.rootLink(), l.node(2), l.hubPort(2))
	fmt.Fprintf(&b, "subnet %s gateway %s node address %s\n", l.subnet(), l.gateway(), l.addr(2))
	fmt.Fprintf(&b, "dir %s lock %s node dir %s engine cgroup %s\n", l.dir(), l.lockPath(), l.nodeDir(2), l.engineCgroup(2))

	golden := filepath.Join("testdata", "plan.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("the plan changed (go test -run TestPlan -update, then review the diff):\n%s", got)
	}
}

// Bed numbers are not reused across names, and nothing else is taken for
// a bed's: the sweep removes whatever bedOf claims.
func TestBedOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		bed  int
		ok   bool
	}{
		{"swt-12", 12, true},
		{"swt-12-n3", 12, true},
		{"swt-12-hub", 12, true},
		{"swt-12-r", 12, true},
		{"swt-12.lock", 12, true},
		{"swt-1", 1, true},
		{"swt-127", 127, true},
		{"swt-128", 0, false}, // beyond the hubs' 172.16.1-127
		{"swt-0", 0, false},
		{"swt-012", 0, false},
		{"swt-", 0, false},
		{"swt-x", 0, false},
		{"swt-12x", 0, false},
		{"swt12", 0, false},
		{"docker0", 0, false},
		{"veth0", 0, false},
		{"xswt-1", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bed, ok := bedOf(tt.name)
			if bed != tt.bed || ok != tt.ok {
				t.Errorf("bedOf(%q) = %d, %v; want %d, %v", tt.name, bed, ok, tt.bed, tt.ok)
			}
		})
	}
}

// Every name a bed makes reads back as its bed, and interface names fit
// the kernel's 15 characters at the largest bed and node numbers.
func TestNamesRoundTrip(t *testing.T) {
	l := layout{maxBeds}
	for _, n := range []string{l.name(), l.hubNS(), l.rootLink(), l.node(maxNodes), filepath.Base(l.lockPath()), filepath.Base(l.dir())} {
		if b, ok := bedOf(n); !ok || b != maxBeds {
			t.Errorf("bedOf(%q) = %d, %v; want %d", n, b, ok, maxBeds)
		}
	}
	for _, link := range []string{l.rootLink(), l.hubPort(maxNodes), hubBridge, nodeLink} {
		if len(link) > 15 {
			t.Errorf("link name %q is longer than 15 characters", link)
		}
	}
	if a := l.addr(maxNodes); !l.subnet().Contains(a) || a == l.gateway() {
		t.Errorf("node address %s is not a host of %s apart from %s", a, l.subnet(), l.gateway())
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tt := range []struct {
		name             string
		in               Options
		managers, worker int
		err              bool
	}{
		{"zero is one manager and two workers", Options{}, 1, 2, false},
		{"three managers alone", Options{Managers: 3}, 3, 0, false},
		{"as asked", Options{Managers: 1, Workers: 4}, 1, 4, false},
		{"workers need a manager", Options{Workers: 2}, 0, 0, true},
		{"negative", Options{Managers: 1, Workers: -1}, 0, 0, true},
		{"too many", Options{Managers: 3, Workers: maxNodes}, 0, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err == nil && (got.Managers != tt.managers || got.Workers != tt.worker) {
				t.Errorf("got %d managers and %d workers, want %d and %d", got.Managers, got.Workers, tt.managers, tt.worker)
			}
		})
	}
}

func TestMountInfo(t *testing.T) {
	for _, tt := range []struct {
		line, fsType, mnt, super string
	}{
		{"35 26 0:30 / /sys/fs/cgroup/pids rw,relatime shared:14 - cgroup cgroup rw,pids", "cgroup", "/sys/fs/cgroup/pids", "rw,pids"},
		{"36 26 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw", "cgroup2", "/sys/fs/cgroup/unified", "rw"},
		{"522 29 0:4 net:[4026532175] /run/netns/swt-1-n1 rw shared:253 - nsfs nsfs rw", "nsfs", "/run/netns/swt-1-n1", "rw"},
	} {
		fsType, mnt, ok := mountType(tt.line)
		if !ok || fsType != tt.fsType || mnt != tt.mnt || superOptions(tt.line) != tt.super {
			t.Errorf("%q: got %q %q %v %q", tt.line, fsType, mnt, ok, superOptions(tt.line))
		}
	}
	if _, _, ok := mountType("garbage"); ok {
		t.Error("a line without ' - ' parsed")
	}
}

// The lock of a bed: one holder at a time, and a lock taken on a file
// its previous owner has removed is no lock (the owner removes the file,
// then lets go).
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "swt-1.lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	first, ok, err := lock(open())
	if err != nil || !ok {
		t.Fatalf("first lock: %v, %v", ok, err)
	}
	if _, ok, err := lock(open()); err != nil || ok {
		t.Fatalf("second lock while the first holds: %v, %v; want refused", ok, err)
	}
	late := open() // opened before the owner lets go, locked after
	release(first)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("release left %s: %v", path, err)
	}
	if _, ok, err := lock(late); err != nil || ok {
		t.Errorf("a lock on the removed file: %v, %v; want refused", ok, err)
	}
	again, ok, err := lock(open())
	if err != nil || !ok {
		t.Fatalf("lock after release: %v, %v", ok, err)
	}
	release(again)
}
