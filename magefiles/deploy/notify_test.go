package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

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
	r := Record{Env: "staging", Stack: "svc", Action: "deploy", Seq: 7, Version: "v1.2.3", Digest: "sha256:abc", Who: "ann@laptop",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	n.Send(eventOf(EventStart, r))
	r.Duration, r.Result = 42*time.Second, Succeeded
	n.Send(eventOf(EventSuccess, r))
	n.Close()
	got := w.got()
	if len(got) != 2 || got[0].Event != EventStart || got[1].Event != EventSuccess {
		t.Fatalf("events %+v, want start then success", got)
	}
	want := Event{Event: EventSuccess, Environment: "staging", Stack: "svc", Action: "deploy", Seq: 7, Release: "v1.2.3",
		Digest: "sha256:abc", Who: "ann@laptop", Started: r.Started, Duration: 42, Result: Succeeded}
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
			n.Send(Event{Event: EventStart})
			n.Send(Event{Event: EventSuccess})
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
	n.Send(Event{Event: EventStart})
	n.Close()
}

// fakeEngine is enough of an engine for a whole change (a scale) through
// the pipeline: one node, one stack, services that converge at once.
type fakeEngine struct {
	*fakeServices
}

func (f *fakeEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	return client.SystemInfoResult{Info: system.Info{ServerVersion: "20.10.24",
		Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true, Cluster: &swarm.ClusterInfo{ID: "cluster"}}}}, nil
}

func (f *fakeEngine) ServiceList(context.Context, client.ServiceListOptions) (client.ServiceListResult, error) {
	var out []swarm.Service
	for _, s := range f.services {
		out = append(out, s)
	}
	return client.ServiceListResult{Items: out}, nil
}

func (f *fakeEngine) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	return client.NetworkListResult{}, nil
}

func (f *fakeEngine) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	return client.NodeListResult{Items: []swarm.Node{{ID: "n1", Status: swarm.NodeStatus{State: swarm.NodeStateReady},
		Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive, Role: swarm.NodeRoleManager}}}}, nil
}

// ServiceUpdate keeps the new spec, so the scale converges.
func (f *fakeEngine) ServiceUpdate(ctx context.Context, id string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	for name, s := range f.services {
		if s.ID == id {
			s.Spec = o.Spec
			f.services[name] = s
		}
	}
	return f.fakeServices.ServiceUpdate(ctx, id, o)
}

// scaleWithWebhook scales a fake stack's app to 0 with the webhook at u,
// and returns the output and how long the change took.
func scaleWithWebhook(t *testing.T, u secret.Value, timeout time.Duration) (string, time.Duration, error) {
	t.Helper()
	one := uint64(1)
	app := swarm.Service{ID: "app1", Spec: WithDefaults(swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "svc_app", Labels: map[string]string{StackLabel: "svc"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "registry.example/app:v1@" + digestV2}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	})}
	api := &fakeEngine{&fakeServices{fakeSwarm: newFakeSwarm(), services: map[string]swarm.Service{"svc_app": app}}}
	var out bytes.Buffer
	d := &Deployer{
		Env: &Environment{Name: "staging", Stack: "svc", Image: "registry.example/app", Deadline: time.Minute, History: 10, MaxReplicas: 4,
			Notify: &Notify{URLEnv: "HOOK", Timeout: timeout}},
		API: api, Endpoint: "fake", Who: "ann@laptop", Out: &out, Webhook: u, Poll: 10 * time.Millisecond,
		Auth: func(context.Context, string) (string, error) { return "", nil },
	}
	start := time.Now()
	err := d.Scale(t.Context(), "app", 0, false)
	return out.String(), time.Since(start), err
}

// A change sends start, then success, with the change's facts.
func TestChangeNotifies(t *testing.T) {
	w := newWebhook(t)
	out, _, err := scaleWithWebhook(t, w.url(), time.Second)
	if err != nil {
		t.Fatalf("scale: %v\n%s", err, out)
	}
	got := w.got()
	if len(got) != 2 || got[0].Event != EventStart || got[1].Event != EventSuccess {
		t.Fatalf("events %+v, want start then success\n%s", got, out)
	}
	e := got[1]
	if e.Environment != "staging" || e.Stack != "svc" || e.Action != "scale" || e.Seq != 1 || e.Release != "v1" ||
		e.Digest != digestV2 || e.Who != "ann@laptop" || e.Result != Succeeded || e.Started.IsZero() || e.Duration <= 0 {
		t.Errorf("success event %+v", e)
	}
}

// A webhook that hangs holds a change no longer than its timeout.
func TestHangingWebhookHoldsTheChangeOneTimeout(t *testing.T) {
	fast, _, err := scaleWithWebhook(t, secret.Value{}, time.Second) // no webhook: the baseline
	if err != nil || !strings.Contains(fast, "warning: notify: HOOK is not set") {
		t.Fatalf("scale without a webhook: %v\n%s", err, fast)
	}
	w := newWebhook(t)
	w.hang = make(chan struct{})
	defer close(w.hang)
	const timeout = 500 * time.Millisecond
	out, took, err := scaleWithWebhook(t, w.url(), timeout)
	if err != nil {
		t.Fatalf("scale: %v\n%s", err, out)
	}
	if took > timeout+time.Second {
		t.Errorf("the change took %s with a hanging webhook (timeout %s)", took, timeout)
	}
	// The change itself is quicker than the timeout here: the start event
	// is given up when it ends, and the success event never leaves.
	if !strings.Contains(out, "warning: notify: the start event was not delivered: no answer") ||
		!strings.Contains(out, "warning: notify: the success event was not delivered") {
		t.Errorf("no warning for the hanging webhook:\n%s", out)
	}
	if strings.Contains(out, "T0K3N") {
		t.Errorf("the output shows the webhook's URL:\n%s", out)
	}
}
