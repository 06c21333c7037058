// Package notify POSTs a change's events to a webhook, in the background,
// so that a slow or failing webhook never fails or holds a change.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fractionate/service-template/internal/secret"
)

// Kind is what an event says happened.
type Kind string

// The events a change sends: start once it passed preflight and is about
// to change something; then one of success (converged), rollback (failed,
// and every touched service runs its previous spec again) or failure
// (stopped before any change, or the restore failed too).
const (
	Start    Kind = "start"
	Success  Kind = "success"
	Rollback Kind = "rollback"
	Failure  Kind = "failure"
)

// Event is the JSON a webhook receives.
type Event struct {
	Event       Kind      `json:"event"`
	Environment string    `json:"environment"`
	Stack       string    `json:"stack"`
	Action      string    `json:"action"` // deploy, rollback, scale, rotate
	Seq         int       `json:"seq"`    // the record's number: deploy:history shows it
	Release     string    `json:"release"`
	Digest      string    `json:"digest"`
	Who         string    `json:"who"`
	Started     time.Time `json:"started"`
	Duration    float64   `json:"duration_seconds"`
	Result      string    `json:"result,omitempty"`   // as recorded: succeeded, rolled back, failed, not applied
	Reason      string    `json:"reason,omitempty"`   // Swarm's or the task's, when it failed
	Override    string    `json:"override,omitempty"` // why preflight's protected checks were skipped
}

// Notifier POSTs events to a webhook in the background, in order. A slow
// or failing webhook never fails a change and holds it at most one
// timeout: each event has that long, and Close gives the ones still queued
// that long in all before dropping them. Failures are warnings, printed by
// Send and Close (so from the caller's goroutine) without the URL.
type Notifier struct {
	url     secret.Value
	timeout time.Duration
	out     io.Writer
	client  *http.Client

	queue  chan Event
	done   chan struct{}
	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc

	mu       sync.Mutex
	warnings []string
}

// NewNotifier starts a notifier; nil when url is unset (no webhook: Send
// and Close do nothing).
func NewNotifier(u secret.Value, timeout time.Duration, out io.Writer) *Notifier {
	if !u.IsSet() {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Redirects are not followed: the next hop would get the secret URL as
	// a Referer, and a webhook that moved should be changed where it is set.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	n := &Notifier{url: u, timeout: timeout, out: out, client: hc, queue: make(chan Event, 32),
		done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go n.run()
	return n
}

func (n *Notifier) run() {
	defer close(n.done)
	for e := range n.queue {
		if n.ctx.Err() != nil {
			n.warn(e, fmt.Sprintf("not sent: the webhook was still busy with an earlier event when the change ended (notify.timeout %s)", n.timeout))
			continue
		}
		if err := n.post(e); err != nil {
			n.warn(e, err.Error())
		}
	}
}

func (n *Notifier) post(e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url.Reveal(), bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook's URL does not parse")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "service-template-deploy")
	resp, err := n.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", n.timeout)
		}
		if n.ctx.Err() != nil {
			return fmt.Errorf("no answer by the end of the change (notify.timeout %s)", n.timeout)
		}
		return errors.New(n.redact(UnwrapURLError(err).Error()))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return fmt.Errorf("the webhook answered %s, a redirect, which is not followed (it would carry the webhook's URL elsewhere): set the URL it moved to", resp.Status)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}

// redact takes the URL, and its host, out of a message.
func (n *Notifier) redact(msg string) string {
	u := n.url.Reveal()
	msg = strings.ReplaceAll(msg, u, "[webhook]")
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		msg = strings.ReplaceAll(msg, p.Host, "[webhook host]")
		if p.Hostname() != "" {
			msg = strings.ReplaceAll(msg, p.Hostname(), "[webhook host]")
		}
	}
	return msg
}

func (n *Notifier) warn(e Event, msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.warnings = append(n.warnings, fmt.Sprintf("warning: notify: the %s event was not delivered: %s (the change is not affected; the webhook's URL is not shown)", e.Event, msg))
}

func (n *Notifier) flushWarnings() {
	n.mu.Lock()
	ws := n.warnings
	n.warnings = nil
	n.mu.Unlock()
	for _, w := range ws {
		fmt.Fprintln(n.out, w)
	}
}

// Send queues an event without waiting for it.
func (n *Notifier) Send(e Event) {
	if n == nil {
		return
	}
	n.flushWarnings()
	select {
	case n.queue <- e:
	default:
		n.warn(e, "not sent: too many events waiting")
	}
}

// Close waits for the queued events, at most one timeout in all, then
// gives up on the rest and prints the warnings.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	close(n.queue)
	select {
	case <-n.done:
	case <-time.After(n.timeout):
		n.cancel()
		<-n.done
	}
	n.cancel()
	n.flushWarnings()
}

// UnwrapURLError drops net/http's "Post \"URL\": " prefix: the URL may be
// a secret, and the caller says what was asked.
func UnwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
