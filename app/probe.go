package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// probeTimeout bounds each request of `app probe`.
const probeTimeout = 5 * time.Second

// probeMaxBody is as much of a body as `app probe` reports.
const probeMaxBody = 64 << 10

// ProbeResult is one line of `app probe`'s output: one request. The deploy
// tooling reads these lines from a job's log (the image has no curl), so
// the shape is a contract: change it in both places.
type ProbeResult struct {
	URL     string          `json:"url"`
	Address string          `json:"address,omitempty"` // the address asked, with -all
	Status  int             `json:"status,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"` // the body when it is JSON,
	Text    string          `json:"text,omitempty"` // else as text
	Error   string          `json:"error,omitempty"`
}

// probe GETs each URL and prints one JSON line per request; it fails
// unless every answer is 2xx. With -all, the URL's host is resolved and
// every address is asked (tasks.app: each task of a Swarm service), the
// Host header keeping the name. It reads no configuration: a deploy runs it
// on a stack's network from the release's image to look at the service.
func probe(ctx context.Context, args []string, stdout io.Writer) error {
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
				_ = enc.Encode(ProbeResult{URL: u.String(), Error: err.Error()})
				failed++
				total++
				continue
			}
		}
		for _, addr := range addrs {
			r := probeOne(ctx, u, addr)
			total++
			if r.Error != "" || r.Status < 200 || r.Status > 299 {
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

// probeOne GETs u, connecting to addr when given (an IP the host resolved
// to): the URL, its Host header and TLS name stay the host's.
func probeOne(ctx context.Context, u *url.URL, addr string) ProbeResult {
	r := ProbeResult{URL: u.String()}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	if addr != "" {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		r.Address = net.JoinHostPort(addr, port)
		dialer := &net.Dialer{}
		transport.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, r.Address)
		}
	}
	client := &http.Client{Transport: transport, Timeout: probeTimeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil) //nolint:gosec // G704: as below
	if err != nil {
		r.Error = err.Error()
		return r
	}
	resp, err := client.Do(req) //nolint:gosec // G704: asking the URLs it is given is what probe is for
	if err != nil {
		// The URL is already in the line: keep the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, probeMaxBody))
	if err != nil {
		r.Error = "reading the body: " + err.Error()
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && json.Valid(body) {
		r.Body = body
	} else {
		r.Text = strings.ToValidUTF8(string(body), "?")
	}
	return r
}
