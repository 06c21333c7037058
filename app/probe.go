package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"

	"github.com/fractionate/service-template/internal/probe"
)

// probe GETs each URL and prints one JSON line per request; it fails
// unless every answer is 2xx. With -all, the URL's host is resolved and
// every address is asked (tasks.app: each task of a Swarm service), the
// Host header keeping the name. It reads no configuration: a deploy runs it
// on a stack's network from the release's image to look at the service.
func probeCommand(ctx context.Context, args []string, stdout io.Writer) error {
	all := false
	if len(args) > 0 && args[0] == "-all" {
		all, args = true, args[1:]
	}
	if len(args) == 0 {
		return usageError("probe needs at least one http:// or https:// URL")
	}
	var targets []*url.URL
	for _, a := range args {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError(fmt.Sprintf("probe: %q is not an http:// or https:// URL", a))
		}
		targets = append(targets, u)
	}
	failed, total := 0, 0
	enc := json.NewEncoder(stdout)
	for _, u := range targets {
		addrs := []string{""}
		if all {
			var err error
			if addrs, err = net.DefaultResolver.LookupHost(ctx, u.Hostname()); err != nil {
				_ = enc.Encode(probe.Result{URL: u.String(), Error: err.Error()})
				failed++
				total++
				continue
			}
		}
		for _, addr := range addrs {
			r := probe.Get(ctx, u, addr)
			total++
			if !r.OK() {
				failed++
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("probe: %d of %d requests did not answer 2xx", failed, total)
	}
	return nil
}
