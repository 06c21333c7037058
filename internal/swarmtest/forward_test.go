package swarmtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoServer answers each line with the line upper-cased, and closes
// its side once the client has closed its own.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					_, _ = io.WriteString(c, strings.ToUpper(s.Text())+"\n")
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestForwarder(t *testing.T) {
	target := echoServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var f forwarder
	if err := f.serve(l, target); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello\nworld\n"); err != nil {
		t.Fatal(err)
	}
	// A half-close passes through: the server sees the end of the
	// request, answers, and closes; the answer arrives whole.
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HELLO\nWORLD\n" {
		t.Errorf("through the forwarder: %q, %v; want HELLO WORLD and the end", got, err)
	}

	// close ends the listener and the connections still open.
	open, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := io.WriteString(open, "x\n"); err != nil {
		t.Fatal(err)
	}
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(open).ReadString('\n'); err != nil || line != "X\n" {
		t.Fatalf("second connection: %q, %v", line, err)
	}
	done := make(chan struct{})
	go func() { f.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return with a connection open")
	}
	if _, err := io.ReadAll(open); err != nil {
		t.Errorf("the open connection after close: %v, want its end", err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after close")
	}
	if err := f.serve(l, target); err == nil {
		t.Error("serve after close succeeded")
	}
}

// listenIn opens its listener in the namespace it is given: here this
// process's own, entered again (which needs CAP_SYS_ADMIN).
func TestListenIn(t *testing.T) {
	if os.Geteuid() != 0 {
		// plain skip: entering a network namespace needs root; no Docker involved.
		t.Skip("entering a network namespace needs root")
	}
	l, err := listenIn("/proc/self/ns/net", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial the listener made in this namespace: %v", err)
	}
	_ = c.Close()
	if _, err := listenIn("/nonexistent/ns", "127.0.0.1:0"); err == nil {
		t.Error("listenIn of a missing namespace succeeded")
	}
}

// inNetNS runs its function inside the namespace and puts the thread back
// where it was: a thread left inside once made the whole test process look
// like a survivor of a bed's sweep.
func TestInNetNSGoesBack(t *testing.T) {
	if os.Geteuid() != 0 {
		// plain skip: making a network namespace needs root; no Docker involved.
		t.Skip("making a network namespace needs root")
	}
	// A namespace of its own, held by a thread that waits until the test ends.
	nsPath := make(chan string)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			close(nsPath)
			return
		}
		nsPath <- fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		<-release
	}()
	path, ok := <-nsPath
	if !ok {
		return
	}
	defer close(release)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	home := nsInode(t, "/proc/thread-self/ns/net")
	target := nsInode(t, path)
	if home == target {
		t.Fatal("the new namespace is this thread's own")
	}
	var inside uint64
	err := inNetNS(path, func() error {
		inside = nsInode(t, "/proc/thread-self/ns/net")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != target {
		t.Errorf("the function ran in namespace %d, want %d", inside, target)
	}
	if now := nsInode(t, "/proc/thread-self/ns/net"); now != home {
		t.Errorf("after inNetNS the thread is in namespace %d, want its own %d", now, home)
	}
	if err := inNetNS("/nonexistent/ns", func() error { return nil }); err == nil {
		t.Error("inNetNS of a missing namespace succeeded")
	}
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}
