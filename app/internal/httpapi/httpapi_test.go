package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/fractionate/service-template/app/internal/buildinfo"
	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/health"
	"github.com/fractionate/service-template/app/internal/httpapi"
	"github.com/fractionate/service-template/app/internal/notes"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// memStore is an in-memory NoteStore for the handler's unit tests; the
// integration test below runs the same requests against Postgres.
type memStore struct {
	mu    sync.Mutex
	notes []notes.Note
	fail  error
}

func (s *memStore) Create(_ context.Context, title, body string) (notes.Note, error) {
	if s.fail != nil {
		return notes.Note{}, s.fail
	}
	if err := notes.Validate(title, body); err != nil {
		return notes.Note{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := notes.Note{ID: int64(len(s.notes) + 1), Title: title, Body: body, CreatedAt: time.Now().UTC()}
	s.notes = append(s.notes, n)
	return n, nil
}

func (s *memStore) Get(_ context.Context, id int64) (notes.Note, error) {
	if s.fail != nil {
		return notes.Note{}, s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > int64(len(s.notes)) {
		return notes.Note{}, notes.ErrNotFound
	}
	return s.notes[id-1], nil
}

func (s *memStore) List(_ context.Context, limit int, before int64) ([]notes.Note, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []notes.Note{}
	for i := len(s.notes) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || s.notes[i].ID < before {
			out = append(out, s.notes[i])
		}
	}
	return out, nil
}

type readiness map[string]error

func (r readiness) Check(context.Context) map[string]error { return r }

// spec validates requests and responses against openapi.yaml.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return spec{doc, router}
}

// check fails the test when the exchange does not match the document.
func (s spec) check(t *testing.T, req *http.Request, reqBody []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{ExcludeRequestBody: true, ExcludeRequestQueryParams: true}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s -> %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL, rec.Code, err, rec.Body)
	}
}

type exchange struct {
	name       string
	method     string
	path       string
	body       string
	wantStatus int
	wantBody   string // substring
}

// exchanges is the HTTP contract, run against the in-memory store and
// against Postgres. Order matters: later rows read what earlier rows wrote.
var exchanges = []exchange{
	{"health", "GET", "/health", "", 200, `{"status":"ok"}`},
	{"version", "GET", "/version", "", 200, `"version":"v9.9.9"`},
	{"create", "POST", "/v1/notes", `{"title":"first","body":"hello"}`, 201, `"title":"first"`},
	{"create without body field", "POST", "/v1/notes", `{"title":"second"}`, 201, `"body":""`},
	{"get", "GET", "/v1/notes/1", "", 200, `"body":"hello"`},
	{"list", "GET", "/v1/notes?limit=1", "", 200, `"title":"second"`},
	{"list before", "GET", "/v1/notes?before=2", "", 200, `"title":"first"`},
	{"get missing", "GET", "/v1/notes/999", "", 404, `"error":"note not found"`},
	{"get bad id", "GET", "/v1/notes/abc", "", 400, `"error":"id: \"abc\" is not a positive integer"`},
	{"get zero id", "GET", "/v1/notes/0", "", 400, `positive integer`},
	{"list bad limit", "GET", "/v1/notes?limit=1000", "", 400, `limit`},
	{"malformed json", "POST", "/v1/notes", `{"title":`, 400, `not valid JSON`},
	{"not json at all", "POST", "/v1/notes", `title=x`, 400, `not valid JSON`},
	{"empty body", "POST", "/v1/notes", ``, 400, `body is empty`},
	{"unknown field", "POST", "/v1/notes", `{"title":"x","color":"red"}`, 400, `unknown field`},
	{"wrong type", "POST", "/v1/notes", `{"title":5}`, 400, `title: must be a string`},
	{"two objects", "POST", "/v1/notes", `{"title":"x"}{"title":"y"}`, 400, `single JSON object`},
	{"missing title", "POST", "/v1/notes", `{"body":"x"}`, 400, `title: is required`},
	{"blank title", "POST", "/v1/notes", `{"title":"  "}`, 400, `title: is required`},
	{"title too long", "POST", "/v1/notes", `{"title":"` + strings.Repeat("t", 201) + `"}`, 400, `title: is 201 characters`},
	{"oversized body", "POST", "/v1/notes", `{"title":"x","body":"` + strings.Repeat("b", 70000) + `"}`, 400, `exceeds the limit of 65536 bytes`},
}

func newHandler(store httpapi.NoteStore, ready httpapi.Readiness, log io.Writer) http.Handler {
	return newHandlerWith(store, ready, schema{expected: 2, current: 2}, log)
}

func newHandlerWith(store httpapi.NoteStore, ready httpapi.Readiness, sc httpapi.Schema, log io.Writer) http.Handler {
	return httpapi.New(httpapi.Deps{
		Log:          slog.New(slog.NewJSONHandler(log, nil)),
		Notes:        store,
		Ready:        ready,
		Build:        buildinfo.Info{Version: "v9.9.9", Commit: "abc1234", Date: "2026-01-01T00:00:00Z"},
		Schema:       sc,
		MaxBodyBytes: 65536,
	})
}

// schema is a stand-in for the database's schema version.
type schema struct {
	expected, current int64
	err               error
}

func (s schema) Expected() int64                        { return s.expected }
func (s schema) Current(context.Context) (int64, error) { return s.current, s.err }

func runExchanges(t *testing.T, h http.Handler) {
	s := loadSpec(t)
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			req := httptest.NewRequest(ex.method, ex.path, strings.NewReader(ex.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != ex.wantStatus {
				t.Errorf("status = %d, want %d; body %s", rec.Code, ex.wantStatus, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), ex.wantBody) {
				t.Errorf("body %s does not contain %s", rec.Body, ex.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			s.check(t, httptest.NewRequest(ex.method, ex.path, nil), []byte(ex.body), rec)
		})
	}
}

func TestContractInMemory(t *testing.T) {
	runExchanges(t, newHandler(&memStore{}, readiness{}, io.Discard))
}

func TestIntegrationContractOnPostgres(t *testing.T) {
	runExchanges(t, newHandler(notes.NewStore(dbtest.NewPool(t), 0), readiness{}, io.Discard))
}

func TestReady(t *testing.T) {
	s := loadSpec(t)
	tests := []struct {
		name     string
		failures readiness
		want     int
		wantBody string
	}{
		{"ready", readiness{}, 200, `{"status":"ready"}`},
		{"postgres down", readiness{"postgres": fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}, 503, `{"checks":{"postgres":"connection refused"},"status":"not ready"}`},
		{"shutting down", readiness{"shutdown": health.ErrShuttingDown}, 503, `"shutdown":"shutting down"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/ready", nil)
			rec := httptest.NewRecorder()
			newHandler(&memStore{}, tt.failures, io.Discard).ServeHTTP(rec, req)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tt.want, tt.wantBody)
			}
			s.check(t, req, nil, rec)
		})
	}
}

// TestVersionReportsSchema: /version says which schema the build expects
// and which the database is at; an unreadable database is a short cause,
// never a failed /version.
func TestVersionReportsSchema(t *testing.T) {
	s := loadSpec(t)
	tests := []struct {
		name     string
		schema   httpapi.Schema
		wantBody string
		wantLog  string
	}{
		{"in step", schema{expected: 3, current: 3}, `"schema":{"expected":3,"database":3}`, ""},
		{"database behind: a migration is pending", schema{expected: 3, current: 2}, `"schema":{"expected":3,"database":2}`, ""},
		{"database ahead: after a rollback", schema{expected: 2, current: 3}, `"schema":{"expected":2,"database":3}`, ""},
		{"database down", schema{expected: 3, err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)},
			`"schema":{"expected":3,"database":null,"error":"connection refused"}`, "schema version unreadable"},
		{"no schema", nil, `{"version":"v9.9.9","commit":"abc1234","date":"2026-01-01T00:00:00Z"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			req := httptest.NewRequest(http.MethodGet, "/version", nil)
			rec := httptest.NewRecorder()
			newHandlerWith(&memStore{}, readiness{}, tt.schema, &logs).ServeHTTP(rec, req)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %s, want 200 with %s", rec.Code, rec.Body, tt.wantBody)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q does not say %q", logs.String(), tt.wantLog)
			}
			s.check(t, req, nil, rec)
		})
	}
}

// TestStoreFailureIsLoggedNotLeaked: an unexpected error is a 500 with a
// generic message; the cause goes to the log with the request id.
func TestStoreFailureIsLoggedNotLeaked(t *testing.T) {
	var logs bytes.Buffer
	h := newHandler(&memStore{fail: errors.New("pq: password authentication failed for user app")}, readiness{}, &logs)
	req := httptest.NewRequest(http.MethodGet, "/v1/notes/1", nil)
	req.Header.Set("X-Request-Id", "req-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "password") {
		t.Fatalf("got %d %s, want a generic 500", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "password authentication failed") || !strings.Contains(logs.String(), `"request_id":"req-1"`) {
		t.Fatalf("cause not logged with the request id:\n%s", logs.String())
	}
	loadSpec(t).check(t, req, nil, rec)
}

func TestRequestIDs(t *testing.T) {
	h := newHandler(&memStore{}, readiness{}, io.Discard)
	tests := []struct{ name, sent, want string }{
		{"kept", "abc-123", "abc-123"},
		{"generated when absent", "", ""},
		{"replaced when unsafe", "a b\nc", ""},
		{"replaced when too long", strings.Repeat("x", 65), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/health", nil)
			if tt.sent != "" {
				req.Header.Set("X-Request-Id", tt.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get("X-Request-Id")
			if tt.want != "" && got != tt.want {
				t.Fatalf("X-Request-Id = %q, want %q", got, tt.want)
			}
			if tt.want == "" && (len(got) != 16 || got == tt.sent) {
				t.Fatalf("X-Request-Id = %q, want a fresh 16-hex id", got)
			}
		})
	}
}

// TestRoutesMatchTheDocument: every route is in openapi.yaml and every
// operation in openapi.yaml is a route.
func TestRoutesMatchTheDocument(t *testing.T) {
	s := loadSpec(t)
	documented := map[string]bool{}
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range httpapi.Routes() {
		served[r.Method+" "+r.Path] = true
		if !documented[r.Method+" "+r.Path] {
			t.Errorf("%s %s is served but not in openapi.yaml", r.Method, r.Path)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("%s is in openapi.yaml but not served", op)
		}
	}
	if len(served) == 0 {
		t.Fatal("no routes")
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	rec := httptest.NewRecorder()
	newHandler(&memStore{}, readiness{}, io.Discard).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), httpapi.OpenAPI) {
		t.Fatalf("GET /openapi.yaml = %d", rec.Code)
	}
}
