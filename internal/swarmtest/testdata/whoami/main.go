// Command whoami is the test bed's own service image (FROM scratch, a
// static binary): "serve" answers every GET with the hostname (a task's
// node, through Swarm's {{.Node.Hostname}} template); "ask TARGET..."
// asks each target once (a name is resolved to every address it has, as
// tasks.<service> is) and prints "address hostname" per answer, or
// "address ERROR ..." and exits 1; "watch ADDRESS SECONDS" asks one
// address every 100ms and prints each outcome with its time.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const port = "8080"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: whoami serve | ask TARGET...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve()
	case "ask":
		err = ask(os.Args[2:])
	case "watch":
		err = watch(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "whoami:", err)
		os.Exit(1)
	}
}

func serve() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              ":" + port,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, host)
		}),
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func ask(targets []string) error {
	hc := &http.Client{Timeout: 3 * time.Second}
	failed := 0
	for _, t := range targets {
		addrs := []string{t}
		if net.ParseIP(t) == nil {
			var err error
			if addrs, err = net.LookupHost(t); err != nil {
				fmt.Printf("%s ERROR %v\n", t, err)
				failed++
				continue
			}
		}
		for _, a := range addrs {
			resp, err := hc.Get("http://" + net.JoinHostPort(a, port) + "/")
			if err != nil {
				fmt.Printf("%s ERROR %v\n", a, err)
				failed++
				continue
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				fmt.Printf("%s ERROR %v\n", a, err)
				failed++
				continue
			}
			fmt.Printf("%s %s\n", a, body)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

// watch asks one address every 100ms for a number of seconds and prints
// one line per request: the Unix time in milliseconds, then the hostname
// that answered or ERROR.
func watch(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: watch ADDRESS SECONDS")
	}
	d, err := time.ParseDuration(args[1] + "s")
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	for end := time.Now().Add(d); time.Now().Before(end); {
		began := time.Now()
		answer := "ERROR"
		if resp, err := hc.Get("http://" + net.JoinHostPort(args[0], port) + "/"); err == nil {
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil {
				answer = string(body)
			}
		}
		fmt.Printf("%d %s\n", began.UnixMilli(), answer)
		time.Sleep(100*time.Millisecond - time.Since(began))
	}
	return nil
}
