// Package httpapi is the service's HTTP surface: health, readiness, version,
// the notes resource and the OpenAPI document that describes them all.
package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/fractionate/service-template/app/internal/buildinfo"
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

// Readiness reports failing dependencies by name; none means ready.
type Readiness interface {
	Check(ctx context.Context) map[string]string
}

// Deps are the handler's collaborators.
type Deps struct {
	Log          *slog.Logger
	Notes        NoteStore
	Ready        Readiness
	Build        buildinfo.Info
	MaxBodyBytes int64
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
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"GET", "/ready", func(w http.ResponseWriter, r *http.Request) {
			if failures := d.Ready.Check(r.Context()); len(failures) > 0 {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": failures})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}},
		{"GET", "/version", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, d.Build)
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

// New returns the service's handler, logging one line per request.
func New(d Deps) http.Handler {
	mux := http.NewServeMux()
	for _, r := range routes(d) {
		mux.HandleFunc(r.Method+" "+r.Path, r.handler)
	}
	return logRequests(d.Log, mux)
}

type notesHandler struct {
	store   NoteStore
	log     *slog.Logger
	maxBody int64
}

func (h notesHandler) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title *string `json:"title"`
		Body  string  `json:"body"`
	}
	if err := decodeJSON(w, r, h.maxBody, &in); err != nil {
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
	limit, err := queryInt(r, "limit", 20, 1, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	before, err := queryInt(r, "before", 0, 1, 1<<62)
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

// failed writes the response for a store error and reports whether there was one.
func (h notesHandler) failed(w http.ResponseWriter, r *http.Request, err error) bool {
	var invalid *notes.ValidationError
	switch {
	case err == nil:
		return false
	case errors.As(err, &invalid):
		writeError(w, http.StatusBadRequest, invalid.Error())
	case errors.Is(err, notes.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		// The cause goes to the log, never to the client.
		h.log.ErrorContext(r.Context(), "request failed", "error", err, "request_id", requestID(r.Context()))
		writeError(w, http.StatusInternalServerError, "internal error")
	}
	return true
}

func queryInt(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %q must be an integer between %d and %d", name, s, lo, hi)
	}
	return n, nil
}

// decodeJSON reads exactly one JSON object of at most limit bytes with no
// unknown fields; its errors are safe to show to the client.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if dec.More() {
			return errors.New("body must hold a single JSON object")
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			if errors.As(err, &tooBig) {
				return fmt.Errorf("body exceeds the limit of %d bytes", limit)
			}
			return errors.New("body must hold a single JSON object")
		}
		return nil
	case errors.As(err, &tooBig):
		return fmt.Errorf("body exceeds the limit of %d bytes", limit)
	case errors.Is(err, io.EOF):
		return errors.New("body is empty; want a JSON object")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("body is not valid JSON")
	case errors.As(err, &typ):
		return fmt.Errorf("%s: must be a %s", typ.Field, typ.Type)
	default:
		// Unknown fields and similar: encoding/json's message names the field.
		return fmt.Errorf("body: %s", err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
