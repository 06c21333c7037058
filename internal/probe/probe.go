// Package probe is one HTTP GET as the service's `app probe` command and
// the deploy's smoke check both make it, and the line that reports it. The
// deploy tooling reads these lines from a job's log (the image has no
// curl), so the shape is a contract between the two rooms: it lives here,
// once, for both.
package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Timeout bounds each request.
const Timeout = 5 * time.Second

// MaxBody is as much of a body as a result keeps.
const MaxBody = 64 << 10

// Result is one request: one line of `app probe`'s output.
type Result struct {
	URL     string          `json:"url"`
	Address string          `json:"address,omitempty"` // the address asked, when not the host's own
	Status  int             `json:"status,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"` // the body when it is JSON,
	Text    string          `json:"text,omitempty"` // else as text
	Error   string          `json:"error,omitempty"`
}

// OK reports whether the request answered 2xx.
func (r Result) OK() bool { return r.Error == "" && r.Status >= 200 && r.Status <= 299 }

// Get GETs u, connecting to addr when it is given (an IP the host resolved
// to: the URL, its Host header and TLS name stay the host's). A redirect
// is reported, not followed.
func Get(ctx context.Context, u *url.URL, addr string) Result {
	r := Result{URL: u.String()}
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
	client := &http.Client{Transport: transport, Timeout: Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	resp, err := client.Do(req)
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
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

// Parse reads the result lines out of output that may hold others (logs).
func Parse(out string) []Result {
	var rs []Result
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r Result
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &r) == nil && r.URL != "" {
			rs = append(rs, r)
		}
	}
	return rs
}
