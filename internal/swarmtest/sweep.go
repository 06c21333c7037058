package swarmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A bed is owned by whoever holds the lock on its lock file: the lock
// goes with the process, however it ends (SIGKILL included), so a bed
// whose lock nobody holds is a leftover of a run that is gone, and its
// number is free again.

// claim takes bed b's lock if nobody holds it.
func claim(b int) (*os.File, bool, error) {
	f, err := os.OpenFile(layout{b}.lockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open the lock of bed %d: %w", b, err)
	}
	return lock(f)
}

// lock takes the lock on f, a lock file, if nobody holds it; else it
// closes f.
func lock(f *os.File) (*os.File, bool, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	// The owner before us removes the file before it lets go: a lock on a
	// file no longer at its path is not the bed's lock.
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(f.Name(), &now) != nil || held.Ino != now.Ino || held.Dev != now.Dev {
		_ = f.Close()
		return nil, false, nil
	}
	return f, true, nil
}

// release gives bed b's number back: the file goes first, then the lock.
func release(f *os.File) {
	_ = os.Remove(f.Name())
	_ = f.Close()
}

// allocate claims the first free bed number.
func allocate() (layout, *os.File, error) {
	if err := os.MkdirAll(StateDir, 0o700); err != nil {
		return layout{}, nil, fmt.Errorf("state directory: %w", err)
	}
	for b := 1; b <= maxBeds; b++ {
		f, ok, err := claim(b)
		if err != nil {
			return layout{}, nil, err
		}
		if ok {
			return layout{b}, f, nil
		}
	}
	return layout{}, nil, fmt.Errorf("all %d test beds are taken (locks in %s)", maxBeds, StateDir)
}

// SweepStale removes what beds of runs that are gone left behind (a test
// binary killed with SIGKILL, or timed out): every bed with a trace on
// the machine whose lock nobody holds. Beds of runs still going are left
// alone. It returns the names of the beds it removed.
func SweepStale() ([]string, error) {
	var swept []string
	var errs []error
	for _, b := range staleCandidates() {
		f, ok, err := claim(b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		l := layout{b}
		if len(l.leftovers()) > 0 {
			if err := l.sweep(); err != nil {
				errs = append(errs, err)
			}
			swept = append(swept, l.name())
		}
		release(f)
	}
	return swept, errors.Join(errs...)
}

// staleCandidates lists the bed numbers that have any trace: a lock file,
// a directory, a namespace, a link or a cgroup.
func staleCandidates() []int {
	var names []string
	for _, dir := range []string{StateDir, "/run/netns", "/sys/class/net"} {
		if es, err := os.ReadDir(dir); err == nil {
			for _, e := range es {
				names = append(names, e.Name())
			}
		}
	}
	for _, root := range cgroupRoots() {
		if es, err := os.ReadDir(root); err == nil {
			for _, e := range es {
				names = append(names, e.Name())
			}
		}
	}
	var beds []int
	for _, n := range names {
		if b, ok := bedOf(n); ok {
			beds = append(beds, b)
		}
	}
	slices.Sort(beds)
	return slices.Compact(beds)
}

// sweep removes everything of bed l: its processes (engines, containerd,
// shims, containers, holders), cgroups, namespaces, links and files. The
// caller holds the bed's lock. Mounts go with the nodes' mount
// namespaces, which die with their last process.
func (l layout) sweep() error {
	var errs []error
	// A process in uninterruptible sleep (a mount or disk write on a
	// loaded machine) dies only when that ends: seconds, more than 20 on
	// these 2-core machines under a full test run, once more than 60.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		pids := l.processes()
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// One in uninterruptible sleep ends when the kernel's wait
			// does, which no signal can hurry: said, not failed (CI's
			// leftovers check still sees it if it never ends). Any other
			// survivor is an error.
			var stuck, alive []string
			for _, p := range pids {
				st := procState(p)
				desc := fmt.Sprintf("%d (%s, state %c)", p, comm(p), st)
				if st == 'D' {
					stuck = append(stuck, desc)
				} else {
					alive = append(alive, desc)
				}
			}
			if len(stuck) > 0 {
				fmt.Fprintf(os.Stderr, "swarmtest: %s: processes %v still in uninterruptible sleep after SIGKILL; left to the kernel\n", l.name(), stuck)
			}
			if len(alive) > 0 {
				errs = append(errs, fmt.Errorf("processes %v of %s survive SIGKILL", alive, l.name()))
			}
			break
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, dir := range l.cgroups() {
		if err := rmdirRetry(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", l.rootLink())); err == nil {
		if err := run("ip", "link", "del", l.rootLink()); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range l.namespaces() {
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(l.dir()); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", l.dir(), err))
	}
	return errors.Join(errs...)
}

// leftovers lists what of bed l is on the machine, one line each, as
// .ci/multinode.sh lists it for the whole machine.
func (l layout) leftovers() []string {
	var out []string
	for _, ns := range l.namespaces() {
		out = append(out, "netns "+ns)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", l.rootLink())); err == nil {
		out = append(out, "link "+l.rootLink())
	}
	for _, dir := range l.cgroups() {
		out = append(out, "cgroup "+dir)
	}
	for _, p := range l.processes() {
		out = append(out, "process "+strconv.Itoa(p)+" "+comm(p))
	}
	if _, err := os.Stat(l.dir()); err == nil {
		out = append(out, "dir "+l.dir())
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for line := range strings.Lines(string(mounts)) {
			if f := strings.Fields(line); len(f) > 4 && l.owns(f[4]) {
				out = append(out, "mount "+f[4])
			}
		}
	}
	return out
}

// owns tells whether path is one of bed l's (a namespace file, its
// directory, or anything below them).
func (l layout) owns(path string) bool {
	base := filepath.Base(path)
	if b, ok := bedOf(base); ok && b == l.bed {
		return true
	}
	return path == l.dir() || strings.HasPrefix(path, l.dir()+"/")
}

// all selects everything of a bed; a node's name selects the node's.
func all(string) bool { return true }

// namespaces lists bed l's named network namespaces.
func (l layout) namespaces() []string { return l.namespacesOf(all) }

func (l layout) namespacesOf(match func(string) bool) []string {
	es, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range es {
		if b, ok := bedOf(e.Name()); ok && b == l.bed && match(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// cgroups lists bed l's cgroup directories under every hierarchy,
// deepest first (the order rmdir needs).
func (l layout) cgroups() []string { return l.cgroupsOf(all) }

func (l layout) cgroupsOf(match func(string) bool) []string {
	var out []string
	for _, root := range cgroupRoots() {
		es, _ := os.ReadDir(root)
		for _, e := range es {
			if b, ok := bedOf(e.Name()); !ok || b != l.bed || !e.IsDir() || !match(e.Name()) {
				continue
			}
			_ = filepath.WalkDir(filepath.Join(root, e.Name()), func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					out = append(out, path)
				}
				return nil
			})
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

// processes lists the live (not zombie) processes of bed l: those in its
// cgroups and those in its network namespaces.
func (l layout) processes() []int { return l.processesOf(all) }

func (l layout) processesOf(match func(string) bool) []int {
	seen := map[int]bool{}
	for _, dir := range l.cgroupsOf(match) {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for f := range strings.FieldsSeq(string(data)) {
			if p, err := strconv.Atoi(f); err == nil {
				seen[p] = true
			}
		}
	}
	inodes := map[uint64]bool{}
	for _, ns := range l.namespacesOf(match) {
		var st unix.Stat_t
		if unix.Stat(l.netnsPath(ns), &st) == nil {
			inodes[st.Ino] = true
		}
	}
	if len(inodes) > 0 {
		procs, _ := os.ReadDir("/proc")
		for _, e := range procs {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) == nil && inodes[st.Ino] {
				seen[p] = true
			}
		}
	}
	var out []int
	for p := range seen {
		// This process is never one to kill: it is a member only when a
		// thread of it could not leave a node's namespace (see inNetNS).
		if p != os.Getpid() && !zombie(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// cgroupRoots lists the mounted cgroup hierarchies (v1 controllers and
// the v2 tree).
func cgroupRoots() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var roots []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fsType, mnt, ok := mountType(s.Text()); ok && (fsType == "cgroup" || fsType == "cgroup2") {
			roots = append(roots, mnt)
		}
	}
	return roots
}

// trackingRoot is the hierarchy where node engines get a cgroup of their
// own to be found by: the v1 pids controller, or the v2 tree on a machine
// that has only that.
func trackingRoot() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	var v2 string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fsType, mnt, ok := mountType(s.Text())
		switch {
		case !ok:
		case fsType == "cgroup" && slices.Contains(strings.Split(superOptions(s.Text()), ","), "pids"):
			return mnt, nil
		case fsType == "cgroup2" && v2 == "":
			v2 = mnt
		}
	}
	if v2 == "" {
		return "", errors.New("no cgroup hierarchy to track processes by (neither the v1 pids controller nor cgroup v2 is mounted)")
	}
	return v2, nil
}

// mountType reads the file system type and mount point of one
// /proc/self/mountinfo line.
func mountType(line string) (fsType, mountPoint string, ok bool) {
	pre, post, found := strings.Cut(line, " - ")
	f, g := strings.Fields(pre), strings.Fields(post)
	if !found || len(f) < 5 || len(g) < 1 {
		return "", "", false
	}
	return g[0], f[4], true
}

func superOptions(line string) string {
	_, post, _ := strings.Cut(line, " - ")
	if g := strings.Fields(post); len(g) >= 3 {
		return g[2]
	}
	return ""
}

func zombie(pid int) bool {
	st := procState(pid)
	return st == 0 || st == 'Z' || st == 'X'
}

// procState is the state letter of pid in /proc (R, S, D, Z, ...); 0 when
// it is gone.
func procState(pid int) byte {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

func comm(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	return strings.TrimSpace(string(b))
}

// rmdirRetry removes a cgroup directory, waiting briefly for the kernel
// to let go of tasks that have just exited.
func rmdirRetry(dir string) error {
	var err error
	for range 50 {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// run runs one command of a plan, with its output in the error.
func run(argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// notPermitted tells whether a failed command was refused for want of
// privilege (a container without CAP_SYS_ADMIN, a user namespace).
func notPermitted(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg := err.Error()
		return strings.Contains(msg, "Operation not permitted") || strings.Contains(msg, "Permission denied")
	}
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}
