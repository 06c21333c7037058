package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fractionate/service-template/app/internal/buildinfo"
	"github.com/fractionate/service-template/app/internal/httpapi"
)

// observed records what an Observer is told.
type observed struct {
	mu      sync.Mutex
	started int
	done    []string // "route status"
	took    []time.Duration
}

func (o *observed) Start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started++
}

func (o *observed) Done(route string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, route+" "+http.StatusText(status))
	o.took = append(o.took, d)
}

// The observer hears of every request with the route pattern that took it,
// never the raw path (which would make a series per note ID), and "" for
// what no route took.
func TestObserverSeesRoutePatterns(t *testing.T) {
	tests := []struct {
		method, path string
		want         string
	}{
		{"GET", "/health", "GET /health OK"},
		{"GET", "/v1/notes/42", "GET /v1/notes/{id} Not Found"},
		{"GET", "/v1/notes/abc", "GET /v1/notes/{id} Bad Request"},
		{"POST", "/v1/notes", "POST /v1/notes Unsupported Media Type"},
		{"GET", "/no/such/path", " Not Found"},
		{"DELETE", "/v1/notes", " Method Not Allowed"},
		{"GET", "/v1//notes", " Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			obs := &observed{}
			h := httpapi.New(httpapi.Deps{
				Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Notes: &memStore{}, Ready: readiness{},
				Build: buildinfo.Info{Version: "v1"}, MaxBodyBytes: 1024, Observer: obs,
			})
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, nil))
			if obs.started != 1 || len(obs.done) != 1 || obs.done[0] != tt.want {
				t.Fatalf("started %d, done %q; want 1 start and [%q]", obs.started, obs.done, tt.want)
			}
			if obs.took[0] <= 0 {
				t.Errorf("duration %v, want more than 0", obs.took[0])
			}
		})
	}
}
