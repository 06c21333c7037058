package swarmtest

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// An interrupted test run (SIGINT, SIGTERM) never reaches t.Cleanup: the
// process just ends. So while beds are alive, the package holds those
// signals itself, tears every live bed down, and then ends the process
// with the same signal, as it would have ended without the handler.

var (
	liveMu      sync.Mutex
	live        = map[*Cluster]bool{}
	handlerOnce sync.Once
)

func register(c *Cluster) {
	liveMu.Lock()
	defer liveMu.Unlock()
	live[c] = true
	handlerOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go onSignal(ch)
	})
}

func unregister(c *Cluster) {
	liveMu.Lock()
	defer liveMu.Unlock()
	delete(live, c)
}

func onSignal(ch <-chan os.Signal) {
	sig := <-ch
	liveMu.Lock()
	var cs []*Cluster
	for c := range live {
		cs = append(cs, c)
	}
	liveMu.Unlock()
	if len(cs) > 0 {
		fmt.Fprintf(os.Stderr, "swarmtest: %v: tearing down %d test bed(s) before exiting\n", sig, len(cs))
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := c.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "swarmtest: tear down %s: %v\n", c.Name, err)
			}
		})
	}
	wg.Wait()
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	if s, ok := sig.(syscall.Signal); ok {
		_ = syscall.Kill(os.Getpid(), s)
	}
	// The default action of SIGINT and SIGTERM ends the process; should it
	// be ignored here, end it anyway.
	time.Sleep(5 * time.Second)
	os.Exit(1)
}
