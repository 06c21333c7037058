// Package httpapi is the service's HTTP surface: health, readiness, version,
// the notes resource and the OpenAPI document that describes them all.
package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/fractionate/service-template/app/internal/buildinfo"
	"github.com/fractionate/service-template/app/internal/health"
	"github.com/fractionate/service-template/app/internal/notes"
)

// OpenAPI is the document describing this API; a test keeps it true.
//
//go:embed openapi.yaml
var OpenAPI []byte

// NoteStore is what the notes routes need from storage.
type NoteStore interface {
	Create(ctx context.Context, title, body string) (notes.Note, error)
	Get(ctx context.Context, id int64) (notes.Note, error)
	List(ctx context.Context, limit int, before int64) ([]notes.Note, error)
}

// Readiness reports failing dependencies by name; none means ready. The
// errors go to the log only: they may name users, databases and hosts.
type Readiness interface {
	Check(ctx context.Context) map[string]error
}

// Schema tells the schema version the service expects (the highest
// migration it embeds) from the one the database is at, so a deploy can
// show a release running against a schema it does not know.
type Schema interface {
	Expected() int64
	Current(ctx context.Context) (int64, error)
}

// Deps are the handler's collaborators.
type Deps struct {
	Log          *slog.Logger
	Notes        NoteStore
	Ready        Readiness
	Build        buildinfo.Info
	Schema       Schema // nil: /version leaves the schema out
	MaxBodyBytes int64
	Observer     Observer // nil: requests are logged only
}

// Observer is told of every request: when it starts, and its route pattern
// ("" when no route took it), status and duration when it ends. The
// service's Prometheus metrics are one.
type Observer interface {
	Start()
	Done(route string, status int, d time.Duration)
}

// versionBody is what /version answers.
type versionBody struct {
	buildinfo.Info
	Schema *schemaBody `json:"schema,omitempty"`
}

type schemaBody struct {
	Expected int64  `json:"expected"`
	Database *int64 `json:"database"`        // null when it could not be read
	Error    string `json:"error,omitempty"` // a short cause, as /ready gives
}

// Route is one method and path the service answers.
type Route struct {
	Method, Path string // Path in OpenAPI form: /v1/notes/{id}
	handler      http.HandlerFunc
}

// routes is the whole surface; a test compares it with openapi.yaml both ways.
func routes(d Deps) []Route {
	n := notesHandler{store: d.Notes, log: d.Log, maxBody: d.MaxBodyBytes}
	return []Route{
		{"GET", "/health", func(w http.ResponseWriter, _ *http.Request) {
			writeBody(w, http.StatusOK, healthOK)
		}},
		{"GET", "/ready", func(w http.ResponseWriter, r *http.Request) {
			failures := d.Ready.Check(r.Context())
			if len(failures) == 0 {
				writeBody(w, http.StatusOK, readyOK)
				return
			}
			// Load balancers probe /ready and it is often reachable from
			// outside: the body says which check failed and a short cause,
			// the log says the rest.
			causes := make(map[string]string, len(failures))
			for name, err := range failures {
				causes[name] = health.Cause(err)
				if !errors.Is(err, health.ErrShuttingDown) {
					d.Log.WarnContext(r.Context(), "readiness check failed", "check", name, "error", err.Error(),
						"request_id", requestID(r.Context()))
				}
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": causes})
		}},
		{"GET", "/version", func(w http.ResponseWriter, r *http.Request) {
			body := versionBody{Info: d.Build}
			if d.Schema != nil {
				body.Schema = &schemaBody{Expected: d.Schema.Expected()}
				// /version answers 200 whatever the database does: it says
				// what runs, and the deploy's smoke check reads it.
				if v, err := d.Schema.Current(r.Context()); err != nil {
					body.Schema.Error = health.Cause(err)
					d.Log.WarnContext(r.Context(), "schema version unreadable", "error", err.Error(), "request_id", requestID(r.Context()))
				} else {
					body.Schema.Database = &v
				}
			}
			writeJSON(w, http.StatusOK, body)
		}},
		{"GET", "/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(OpenAPI)
		}},
		{"POST", "/v1/notes", n.create},
		{"GET", "/v1/notes", n.list},
		{"GET", "/v1/notes/{id}", n.get},
	}
}

// Routes lists the method and path of every route.
func Routes() []Route { return routes(Deps{}) }

// New returns the service's handler, logging one line per request. Every
// error it returns is JSON, also for routes it does not have.
func New(d Deps) http.Handler {
	rs := routes(d)
	// api holds the routes only: it is asked what an unmatched request
	// deserves (404, or 405 with Allow). mux serves, in one lookup, the
	// routes and, for everything else, the fallback.
	api, mux := http.NewServeMux(), http.NewServeMux()
	for _, r := range rs {
		api.HandleFunc(r.Method+" "+r.Path, r.handler)
		mux.HandleFunc(r.Method+" "+r.Path, r.handler)
	}
	mux.Handle(fallbackPattern, jsonFallback(api))
	return logRequests(d.Log, d.Observer, cleanPathsOnly(mux))
}

// fallbackPattern takes what no route takes; the request log and the
// observer see no route pattern for it.
const fallbackPattern = "/"

// cleanPathsOnly answers 404 for a path not in its clean form (/v1//notes,
// /v1/./notes) instead of letting the mux redirect to the clean form: an
// API has one spelling of each path, and a redirect would make clients
// send a POST body twice.
func cleanPathsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !canonical(r.URL.Path) {
			writeError(w, http.StatusNotFound, "no such route")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// jsonFallback answers what no route took with the JSON error shape
// instead of net/http's text: 404 for an unknown path, 405 (with its Allow
// header) for a known path with another method.
func jsonFallback(api *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fallback, _ := api.Handler(r)
		// Ask api what it would answer, keeping only status and headers.
		probe := &headerProbe{header: http.Header{}}
		fallback.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method not allowed; this path allows "+allow)
			return
		}
		writeError(w, http.StatusNotFound, "no such route")
	})
}

// canonical reports whether mux would take p as it is rather than redirect
// to a cleaned form: no empty, "." or ".." segments.
func canonical(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// headerProbe is a ResponseWriter that keeps the status and headers and
// drops the body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }

func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }

func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

type notesHandler struct {
	store   NoteStore
	log     *slog.Logger
	maxBody int64
}

func (h notesHandler) create(w http.ResponseWriter, r *http.Request) {
	if err := requireJSON(r); err != nil {
		writeError(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	var in struct {
		Title *string `json:"title"`
		Body  string  `json:"body"`
	}
	if err := readJSON(w, r, h.maxBody, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.Title == nil {
		writeError(w, http.StatusBadRequest, "title: is required")
		return
	}
	note, err := h.store.Create(r.Context(), *in.Title, in.Body)
	if h.failed(w, r, err) {
		return
	}
	w.Header().Set("Location", "/v1/notes/"+strconv.FormatInt(note.ID, 10))
	writeJSON(w, http.StatusCreated, note)
}

func (h notesHandler) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("id: %q is not a positive integer", r.PathValue("id")))
		return
	}
	note, err := h.store.Get(r.Context(), id)
	if h.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, note)
}

func (h notesHandler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query() // parsed once for both parameters
	limit, err := queryInt(q, "limit", 20, 1, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	before, err := queryInt(q, "before", 0, 1, 1<<62)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, err := h.store.List(r.Context(), int(limit), before)
	if h.failed(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"notes": list})
}

// RetryAfter is the Retry-After (seconds) of a 503 for a dependency that
// could not answer: long enough for a restart or a failover to make
// progress, short enough for a client to come back soon.
const RetryAfter = "5"

// unavailable is how a store says a dependency could not answer (down,
// refusing, too slow); it names the dependency.
type unavailable interface {
	error
	Unavailable() string
}

// failed writes the response for a store error and reports whether there was one.
func (h notesHandler) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	var invalid *notes.ValidationError
	var down unavailable
	switch {
	case err == nil:
		return false
	case errors.As(err, &invalid):
		writeError(w, http.StatusBadRequest, invalid.Error())
	case errors.Is(err, notes.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &down):
		// Not this request's fault, and it may work later: 503, with
		// the dependency named in the log and not to the client.
		h.log.ErrorContext(r.Context(), "dependency unavailable", "dependency", down.Unavailable(),
			"error", err, "request_id", requestID(r.Context()))
		w.Header().Set("Retry-After", RetryAfter)
		writeError(w, http.StatusServiceUnavailable, "temporarily unavailable; retry later")
	default:
		// The cause goes to the log, never to the client.
		h.log.ErrorContext(r.Context(), "request failed", "error", err, "request_id", requestID(r.Context()))
		writeError(w, http.StatusInternalServerError, "internal error")
	}
	return true
}

func queryInt(q url.Values, name string, def, lo, hi int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %q must be an integer between %d and %d", name, s, lo, hi)
	}
	return n, nil
}

// The bodies of the probes' answers, encoded once: they are the most
// frequent requests, and encoding a map costs more than serving it.
var (
	healthOK = mustJSON(map[string]string{"status": "ok"})
	readyOK  = mustJSON(map[string]string{"status": "ready"})
)

// mustJSON encodes v as writeJSON would, newline included.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
