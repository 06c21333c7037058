package notify

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fractionate/service-template/internal/secret"
)

// webhook is a local HTTP server standing in for a chat or incident
// webhook: it keeps every event it is sent, in order.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	events []Event
	hang   chan struct{} // when set, requests wait for it (or the client)
	status int
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{status: http.StatusNoContent}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.URL.Path != "/hook/T0K3N" {
			t.Errorf("webhook got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var e Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		w.mu.Lock()
		w.events = append(w.events, e)
		hang, status := w.hang, w.status
		w.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
		rw.WriteHeader(status)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) url() secret.Value { return secret.New(w.URL + "/hook/T0K3N") }

func (w *webhook) got() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}

func TestNotifierSendsInOrder(t *testing.T) {
	w := newWebhook(t)
	var out bytes.Buffer
	n := NewNotifier(w.url(), time.Second, &out)
	e := Event{Event: Start, Environment: "staging", Stack: "svc", Action: "deploy", Seq: 7, Release: "v1.2.3", Digest: "sha256:abc", Who: "ann@laptop",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Override: "hotfix"}
	n.Send(e)
	e.Event, e.Duration, e.Result = Success, 42, "succeeded"
	n.Send(e)
	n.Close()
	got := w.got()
	if len(got) != 2 || got[0].Event != Start || got[1].Event != Success {
		t.Fatalf("events %+v, want start then success", got)
	}
	want := e
	if got[1] != want {
		t.Errorf("success event %+v\nwant %+v", got[1], want)
	}
	if got[0].Duration != 0 || got[0].Result != "" {
		t.Errorf("the start event has a duration or result: %+v", got[0])
	}
	if out.Len() != 0 {
		t.Errorf("warnings for a webhook that answered: %s", out.String())
	}
}

// A webhook that fails, answers an error or hangs is a warning that never
// shows the URL, and holds Close no longer than the timeout.
func TestNotifierFailures(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		setup func(w *webhook) secret.Value
		want  string
	}{
		{"answers 500", func(w *webhook) secret.Value { w.status = 500; return w.url() }, "the webhook answered 500 Internal Server Error"},
		{"hangs", func(w *webhook) secret.Value { w.hang = make(chan struct{}); return w.url() }, "no answer"},
		{"nothing listens", func(w *webhook) secret.Value {
			u := w.URL + "/hook/T0K3N"
			w.Close()
			return secret.New(u)
		}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWebhook(t)
			u := tt.setup(w)
			var out bytes.Buffer
			n := NewNotifier(u, timeout, &out)
			n.Send(Event{Event: Start})
			n.Send(Event{Event: Success})
			start := time.Now()
			n.Close()
			if took := time.Since(start); took > timeout+200*time.Millisecond {
				t.Errorf("Close took %s, more than the %s timeout", took, timeout)
			}
			if w.hang != nil {
				close(w.hang)
			}
			if !strings.Contains(out.String(), "warning: notify: the start event was not delivered") || !strings.Contains(out.String(), tt.want) {
				t.Errorf("warnings:\n%s\nwant the start event and %q", out.String(), tt.want)
			}
			host := strings.TrimPrefix(w.URL, "http://")
			if strings.Contains(out.String(), "T0K3N") || strings.Contains(out.String(), host) {
				t.Errorf("a warning shows the webhook's URL:\n%s", out.String())
			}
		})
	}
	var n *Notifier // no webhook configured
	n.Send(Event{Event: Start})
	n.Close()
}

// A webhook that redirects is not followed: the URL, a secret, would go to
// the next hop as a Referer.
func TestNotifierDoesNotFollowRedirects(t *testing.T) {
	var hits int
	var mu sync.Mutex
	next := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer next.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, next.URL+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	var out bytes.Buffer
	n := NewNotifier(secret.New(hook.URL+"/hook/T0K3N"), time.Second, &out)
	n.Send(Event{Event: Start})
	n.Close()
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("the redirect was followed (%d requests reached the next hop)", hits)
	}
	if !strings.Contains(out.String(), "307 Temporary Redirect, a redirect, which is not followed") || strings.Contains(out.String(), "T0K3N") {
		t.Errorf("warnings:\n%s", out.String())
	}
}
