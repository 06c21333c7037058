package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/notes"
)

// errorSchema checks a body against the document's Error schema.
func errorSchema(t *testing.T) func(body []byte) error {
	t.Helper()
	schema := loadSpec(t).doc.Components.Schemas["Error"].Value
	return func(body []byte) error {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return err
		}
		return schema.VisitJSON(v, openapi3.MultiErrors())
	}
}

// checkJSONError fails unless rec is a JSON error in the documented shape.
func checkJSONError(t *testing.T, rec *httptest.ResponseRecorder, want int) string {
	t.Helper()
	if rec.Code != want {
		t.Errorf("status = %d, want %d; body %s", rec.Code, want, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json; body %s", ct, rec.Body)
	}
	if err := errorSchema(t)(rec.Body.Bytes()); err != nil {
		t.Errorf("body %s is not the Error shape: %v", rec.Body, err)
	}
	var e struct{ Error string }
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	return e.Error
}

// Every error is JSON, also where no route matches; 405 keeps Allow; no
// path is redirected.
func TestErrorsAreJSONEverywhere(t *testing.T) {
	h := newHandler(&memStore{}, readiness{}, io.Discard)
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/v1/notes/1/extra", 404, ""},
		{"GET", "/v1/notes/", 404, ""},
		{"GET", "/v1//notes", 404, ""},
		{"POST", "/v1//notes", 404, ""},
		{"GET", "/v1/./notes", 404, ""},
		{"GET", "/v1/x/../notes", 404, ""},
		{"GET", "//health", 404, ""},
		{"DELETE", "/v1/notes/1", 405, "GET, HEAD"},
		{"PUT", "/v1/notes", 405, "GET, HEAD, POST"},
		{"POST", "/health", 405, "GET, HEAD"},
		{"BREW", "/ready", 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://x"+tt.path, strings.NewReader(`{"title":"x"}`))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			msg := checkJSONError(t, rec, tt.want)
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("Location = %q: no redirects", loc)
			}
			if strings.Contains(rec.Body.String(), "<") || msg == "" {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
}

// POST /v1/notes takes JSON only.
func TestCreateRequiresJSON(t *testing.T) {
	tests := []struct {
		name string
		ct   []string // Content-Type headers sent
		want int
	}{
		{"absent", nil, 415},
		{"text/plain", []string{"text/plain"}, 415},
		{"form", []string{"application/x-www-form-urlencoded"}, 415},
		{"a JSON suffix type", []string{"application/merge-patch+json"}, 415},
		{"not UTF-8", []string{"application/json; charset=iso-8859-1"}, 415},
		{"malformed", []string{"application/json, text/plain"}, 415},
		{"two headers", []string{"application/json", "text/plain"}, 415},
		{"empty", []string{""}, 415},
		{"json", []string{"application/json"}, 201},
		{"json with charset", []string{"application/json; charset=utf-8"}, 201},
		{"any case", []string{"Application/JSON; Charset=UTF-8"}, 201},
	}
	s := loadSpec(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{}
			const body = `{"title":"x"}`
			req := httptest.NewRequest(http.MethodPost, "/v1/notes", strings.NewReader(body))
			for _, ct := range tt.ct {
				req.Header.Add("Content-Type", ct)
			}
			rec := httptest.NewRecorder()
			newHandler(store, readiness{}, io.Discard).ServeHTTP(rec, req)
			if tt.want != 201 {
				if msg := checkJSONError(t, rec, tt.want); !strings.Contains(msg, "Content-Type must be application/json") {
					t.Errorf("message %q", msg)
				}
				if len(store.notes) != 0 {
					t.Errorf("stored %v", store.notes)
				}
			} else if rec.Code != 201 {
				t.Errorf("status = %d, want 201; body %s", rec.Code, rec.Body)
			}
			s.check(t, httptest.NewRequest(http.MethodPost, "/v1/notes", nil), []byte(body), rec)
		})
	}
}

// Invalid UTF-8 and escaped lone surrogates are refused before
// encoding/json turns them into U+FFFD.
func TestCreateRefusesInvalidUnicode(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
		wantTitle  string // what is stored on 201
	}{
		{"raw invalid bytes", "{\"title\":\"a\xff\xfeb\"}", 400, ""},
		{"raw invalid bytes in a key", "{\"ti\xfftle\":\"a\"}", 400, ""},
		{"truncated sequence", "{\"title\":\"a\xe2\x82\"}", 400, ""},
		{"overlong encoding", "{\"title\":\"\xc0\xaf\"}", 400, ""},
		{"escaped high surrogate alone", `{"title":"a\ud800b"}`, 400, ""},
		{"escaped high surrogate at the end", `{"title":"a\ud800"}`, 400, ""},
		{"escaped low surrogate alone", `{"title":"\udc00"}`, 400, ""},
		{"high then not low", `{"title":"\ud800\u0041"}`, 400, ""},
		{"two highs", `{"title":"\ud800\ud800"}`, 400, ""},
		{"upper-case hex", `{"body":"\uD800","title":"x"}`, 400, ""},
		{"a valid pair", `{"title":"\ud83d\ude00"}`, 201, "\U0001F600"},
		{"an escaped backslash is text", `{"title":"\\ud800"}`, 201, `\ud800`},
		{"a real U+FFFD", `{"title":"\ufffd"}`, 201, "\ufffd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{}
			req := httptest.NewRequest(http.MethodPost, "/v1/notes", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			newHandler(store, readiness{}, io.Discard).ServeHTTP(rec, req)
			if tt.want == 400 {
				if msg := checkJSONError(t, rec, 400); !strings.Contains(msg, "UTF-8") && !strings.Contains(msg, "surrogate") {
					t.Errorf("message %q", msg)
				}
				if len(store.notes) != 0 {
					t.Errorf("stored %+q", store.notes[0].Title)
				}
				return
			}
			if rec.Code != 201 || len(store.notes) != 1 || store.notes[0].Title != tt.wantTitle {
				t.Errorf("got %d %s, stored %+v; want title %+q", rec.Code, rec.Body, store.notes, tt.wantTitle)
			}
		})
	}
}

// Hostile bodies get fixed messages that name the field when there is one
// and never show a Go type or encoding/json's wording.
func TestDecodeErrorsAreClientSafe(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"array", `[]`, "body must be a JSON object"},
		{"array of objects", `[{"title":"x"}]`, "body must be a JSON object"},
		{"string", `"title"`, "body must be a JSON object"},
		{"number", `42`, "body must be a JSON object"},
		{"boolean", `true`, "body must be a JSON object"},
		{"null", `null`, "body must be a JSON object"},
		{"whitespace only", " \n\t ", "body is empty"},
		{"title an object", `{"title":{"a":1}}`, "title: must be a string"},
		{"title an array", `{"title":["x"]}`, "title: must be a string"},
		{"title a number", `{"title":1e400}`, "title: must be a string"},
		{"title a boolean", `{"title":false}`, "title: must be a string"},
		{"body a number", `{"title":"x","body":12}`, "body: must be a string"},
		{"duplicate with a wrong type last", `{"title":"x","title":5}`, "title: must be a string"},
		{"unknown field", `{"title":"x","color":"red"}`, `"color": unknown field; the fields are body, title`},
		{"field in another case", `{"TITLE":"x"}`, `"TITLE": unknown field`},
		{"long unknown field", `{"` + strings.Repeat("k", 500) + `":1}`, `..."`},
		{"prototype key", `{"__proto__":{"title":"x"}}`, `"__proto__": unknown field`},
		{"trailing comma", `{"title":"x",}`, "body is not valid JSON"},
		{"trailing garbage", `{"title":"x"} x`, "single JSON object"},
		{"two objects", `{"title":"x"}{"title":"y"}`, "single JSON object"},
		{"deep nesting", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "body"},
		{"deep nesting in a field", `{"title":` + strings.Repeat(`{"a":`, 15000) + `1` + strings.Repeat("}", 15000) + `}`, "body"},
		{"NUL escape", `{"title":"a\u0000b"}`, "title/body: must be valid UTF-8 without NUL characters"},
		{"bad escape", `{"title":"\x"}`, "body is not valid JSON"},
		{"bad unicode escape", `{"title":"\u12"}`, "body is not valid JSON"},
		{"NUL after the object", `{"title":"x","body":"y"}` + "\x00", "single JSON object"},
	}
	leaks := []string{"struct", "main.", "httpapi.", "notes.", "*string", "map[", "json:", "Go ", "interface", "[]", "reflect", "unmarshal", "RawMessage", "invalid character"}
	s := loadSpec(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/notes", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			newHandler(&memStore{}, readiness{}, io.Discard).ServeHTTP(rec, req)
			msg := checkJSONError(t, rec, 400)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q lacks %q", msg, tt.want)
			}
			for _, leak := range leaks {
				if strings.Contains(msg, leak) {
					t.Errorf("message %q shows %q", msg, leak)
				}
			}
			s.check(t, httptest.NewRequest(http.MethodPost, "/v1/notes", nil), []byte(tt.body), rec)
		})
	}
}

// unavailableErr is how a fake store says its dependency could not answer.
type unavailableErr struct{ dep string }

func (e unavailableErr) Error() string {
	return e.dep + " unavailable: connect to db.internal:5432: refused"
}
func (e unavailableErr) Unavailable() string { return e.dep }

// A dependency that cannot answer is a 503 with Retry-After on every notes
// route; the log names the dependency, the client sees no detail.
func TestUnavailableDependencyIs503(t *testing.T) {
	causes := map[string]error{
		"a fake store's own error": unavailableErr{"postgres"},
		"the notes store's error": &notes.UnavailableError{Dependency: "postgres",
			Err: fmt.Errorf("get note 1: no answer within database.query_timeout (3s): %w", context.DeadlineExceeded)},
		"wrapped again": fmt.Errorf("handler: %w", &notes.UnavailableError{Dependency: "postgres", Err: errors.New("x")}),
	}
	s := loadSpec(t)
	for name, cause := range causes {
		for _, ex := range []struct{ method, path, body string }{
			{"POST", "/v1/notes", `{"title":"x"}`},
			{"GET", "/v1/notes", ""},
			{"GET", "/v1/notes/1", ""},
		} {
			t.Run(name+"/"+ex.method+" "+ex.path, func(t *testing.T) {
				var logs bytes.Buffer
				req := httptest.NewRequest(ex.method, ex.path, strings.NewReader(ex.body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				newHandler(&memStore{fail: cause}, readiness{}, &logs).ServeHTTP(rec, req)
				msg := checkJSONError(t, rec, 503)
				if rec.Header().Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
				if strings.Contains(msg, "postgres") || strings.Contains(msg, "5432") || strings.Contains(msg, "deadline") {
					t.Errorf("message %q shows the cause", msg)
				}
				if !strings.Contains(logs.String(), `"msg":"dependency unavailable","dependency":"postgres"`) {
					t.Errorf("log does not name the dependency:\n%s", logs.String())
				}
				s.check(t, httptest.NewRequest(ex.method, ex.path, nil), []byte(ex.body), rec)
			})
		}
	}
}

// A failed readiness shows the check and a short cause; the error itself,
// with user, database, host and port, goes to the log only.
func TestReadyBodyHidesTheError(t *testing.T) {
	addr, refused := dbtest.Refused(t, "appuser", "appdb")
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name  string
		err   error
		cause string
	}{
		{"refused, as pgx says it", refused, "connection refused"},
		{"a message only", errors.New("failed to connect to `user=appuser database=appdb`: 10.20.30.40:" + port + " (db.internal): server error"), "unavailable"},
		{"timed out", fmt.Errorf("failed to connect to `user=appuser database=appdb`: %s: %w", addr, context.DeadlineExceeded), "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			req := httptest.NewRequest(http.MethodGet, "/ready", nil)
			rec := httptest.NewRecorder()
			newHandler(&memStore{}, readiness{"postgres": tt.err}, &logs).ServeHTTP(rec, req)
			want := `{"checks":{"postgres":"` + tt.cause + `"},"status":"not ready"}`
			if rec.Code != 503 || strings.TrimSpace(rec.Body.String()) != want {
				t.Errorf("got %d %s, want 503 %s", rec.Code, rec.Body, want)
			}
			for _, leak := range []string{"appuser", "appdb", "user=", "database=", "127.0.0.1", "10.20.30.40", "db.internal", port} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("body shows %q: %s", leak, rec.Body)
				}
			}
			if !strings.Contains(logs.String(), `"check":"postgres"`) || !strings.Contains(logs.String(), "appuser") {
				t.Errorf("the full error is not logged:\n%s", logs.String())
			}
			loadSpec(t).check(t, req, nil, rec)
		})
	}
}
