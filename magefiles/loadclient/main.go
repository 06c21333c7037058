// Command loadclient sends a steady HTTP load at a service and counts every
// failed request: the zero-downtime tests and the deploy benchmark run it in
// a container on the stack's overlay network, where it reaches the tasks
// directly (tasks.<service> resolves to every task; there is no routing
// mesh on the test machines).
//
// It sends -rate requests per second (GET /v1/notes), and keeps -slow POST
// uploads in flight at all times, each sending its body over
// -slow-duration: requests that are still arriving when a task is told to
// stop. Every request opens its own connection (no keep-alive), so a
// request fails only when the service really refused or dropped it, not
// because a pooled connection went stale. It runs until SIGTERM or
// -duration, waits for the requests in flight, and prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Summary is what the load client prints when it stops.
type Summary struct {
	Sent       int64    `json:"sent"`
	Failed     int64    `json:"failed"`
	SlowSent   int64    `json:"slow_sent"`
	SlowFailed int64    `json:"slow_failed"`
	Seconds    float64  `json:"seconds"`
	Errors     []string `json:"errors,omitempty"` // the first few failures
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadclient:", err)
		os.Exit(1)
	}
}

type counter struct {
	sent, failed, slowSent, slowFailed atomic.Int64
	mu                                 sync.Mutex
	errors                             []string
}

func (c *counter) fail(slow bool, err error) {
	if slow {
		c.slowFailed.Add(1)
	} else {
		c.failed.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errors) < 20 {
		c.errors = append(c.errors, time.Now().UTC().Format("15:04:05.000")+" "+err.Error())
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadclient", flag.ContinueOnError)
	base := fs.String("url", "", "service base URL, like http://tasks.app:8080")
	rate := fs.Int("rate", 60, "GET requests per second")
	slow := fs.Int("slow", 4, "slow uploads kept in flight")
	slowFor := fs.Duration("slow-duration", 3*time.Second, "how long each slow upload takes to send its body")
	duration := fs.Duration("duration", 0, "stop after this long (0: at SIGTERM)")
	timeout := fs.Duration("timeout", 15*time.Second, "per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *rate < 1 {
		return errors.New("-url is required and -rate must be positive")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	hc := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			// A stopped task's address refuses at once, or (its interface
			// gone) never answers; either way the dialer tries the next
			// address the name resolved to. Go gives each address at least
			// 2 s of the dial's time, so the timeout leaves room for a
			// second address: with 2 s, one silent address failed the
			// request (seen once in CI, scaling 1 -> 2 on a loaded machine).
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
	var c counter
	var wg sync.WaitGroup
	start := time.Now()
	fmt.Fprintln(stdout, `{"event":"started"}`)

	for range *slow {
		wg.Go(func() {
			for ctx.Err() == nil {
				c.slowSent.Add(1)
				if err := slowUpload(ctx, hc, *base, *slowFor); err != nil {
					c.fail(true, err)
				}
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			c.sent.Add(1)
			wg.Go(func() {
				if err := get(ctx, hc, *base+"/v1/notes?limit=5"); err != nil {
					c.fail(false, err)
				}
			})
		}
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return json.NewEncoder(stdout).Encode(Summary{
		Sent: c.sent.Load(), Failed: c.failed.Load(), SlowSent: c.slowSent.Load(), SlowFailed: c.slowFailed.Load(),
		Seconds: time.Since(start).Seconds(), Errors: c.errors,
	})
}

// The requests are not cancelled with the run's context: a request in
// flight when the run ends finishes and counts.
func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// slowUpload posts a note whose body arrives in pieces over d.
func slowUpload(ctx context.Context, hc *http.Client, base string, d time.Duration) error {
	pr, pw := io.Pipe()
	go func() {
		const pieces = 10
		_, _ = io.WriteString(pw, `{"title":"slow upload","body":"`)
		for range pieces {
			time.Sleep(d / pieces)
			if _, err := io.WriteString(pw, strings.Repeat("x", 64)); err != nil {
				return
			}
		}
		_, _ = io.WriteString(pw, `"}`)
		_ = pw.Close()
	}()
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, base+"/v1/notes", pr)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("slow POST: %s", resp.Status)
	}
	return nil
}
