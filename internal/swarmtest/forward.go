package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// forwarder carries TCP connections accepted in nodes' network namespaces
// to this machine's loopback: a registry at 127.0.0.1:PORT on the machine
// is then at 127.0.0.1:PORT on every node too, under the same image
// references, and engines treat a loopback registry as insecure (plain
// HTTP) without being told.
type forwarder struct {
	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// listenIn opens a TCP listener in the network namespace at nsPath. The
// socket belongs to the namespace it was made in, whichever thread later
// accepts on it.
func listenIn(nsPath, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		err := inNetNS(nsPath, func() error {
			r.l, r.err = (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
			return nil
		})
		if err != nil {
			r.err = err
		}
		ch <- r
	}()
	r := <-ch
	return r.l, r.err
}

// inNetNS runs fn on the calling goroutine's thread inside the network
// namespace at nsPath, then puts the thread back in the namespace it was
// in. A thread left inside must never run another goroutine; Go ends such
// a thread when its goroutine returns, except the process's main thread,
// which it parks instead: the whole process then reads as a member of the
// namespace (/proc/PID/ns/net is the main thread's), and a bed's sweep
// took the test process for a survivor of its SIGKILL. So when the way
// back fails the thread stays locked, and callers run inNetNS on a
// goroutine of its own.
func inNetNS(nsPath string, fn func() error) error {
	runtime.LockOSThread()
	home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open this thread's network namespace: %w", err)
	}
	defer unix.Close(home)
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", nsPath, err)
	}
	fnErr := fn()
	if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
		return errors.Join(fnErr, fmt.Errorf("leave %s: %w", nsPath, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// serve forwards every connection l accepts to target, dialled from this
// process's own (the root) network namespace.
func (f *forwarder) serve(l net.Listener, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		_ = l.Close()
		return errors.New("the test bed is closed")
	}
	f.listeners = append(f.listeners, l)
	f.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() { f.pipe(c, target) })
		}
	})
	return nil
}

func (f *forwarder) pipe(in net.Conn, target string) {
	out, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(context.Background(), "tcp", target)
	if err != nil {
		_ = in.Close()
		return
	}
	if !f.track(in, out) {
		return
	}
	defer f.untrack(in, out)
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the end of one direction on, and keep the other open: an
		// HTTP client may half-close after its request.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go half(out, in)
	go half(in, out)
	<-done
	<-done
}

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
		delete(f.conns, c)
	}
}

// close stops every listener and connection. A socket keeps its network
// namespace alive, so this comes before the namespaces are deleted.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	for _, l := range f.listeners {
		_ = l.Close()
	}
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
