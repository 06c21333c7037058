package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/fractionate/service-template/internal/scrape"
)

// scrapeCommand reads the Prometheus metrics at each URL and prints one
// JSON line per task (internal/scrape's Sample): the figures the scaling
// guide judges. With -all the URL's host is resolved and every address
// asked (tasks.app: each task of a Swarm service); -count rounds, -every
// apart, give deploy:top the differences it takes rates from. It reads no
// configuration: deploy:top runs it on a stack's network from the
// service's image. It fails only when no scrape answered.
func scrapeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scrape", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "resolve the host and scrape every address")
	count := fs.Int("count", 1, "rounds of scrapes")
	every := fs.Duration("every", 10*time.Second, "time between rounds")
	if err := fs.Parse(args); err != nil {
		return usageError("scrape: " + err.Error())
	}
	if fs.NArg() == 0 || *count < 1 || *count > 100 || *every < 0 {
		return usageError("scrape [-all] [-count N (1-100)] [-every DURATION] URL...")
	}
	var targets []*url.URL
	for _, a := range fs.Args() {
		u, err := url.Parse(a)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return usageError(fmt.Sprintf("scrape: %q is not an http:// URL", a))
		}
		targets = append(targets, u)
	}
	enc := json.NewEncoder(stdout)
	ok := 0
	for round := range *count {
		if round > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(*every):
			}
		}
		for _, u := range targets {
			addrs := []string{""}
			if *all {
				var err error
				if addrs, err = net.DefaultResolver.LookupHost(ctx, u.Hostname()); err != nil {
					if err := enc.Encode(scrape.Sample{URL: u.String(), Time: time.Now().UTC(), Error: err.Error()}); err != nil {
						return err
					}
					continue
				}
			}
			for _, addr := range addrs {
				s := scrape.Get(ctx, u, addr)
				if s.Error == "" {
					ok++
				}
				if err := enc.Encode(s); err != nil {
					return err
				}
			}
		}
	}
	if ok == 0 {
		return fmt.Errorf("scrape: no scrape answered")
	}
	return nil
}
