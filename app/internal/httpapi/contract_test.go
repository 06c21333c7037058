package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/notes"
)

// The contract, driven by openapi.yaml alone: for every documented
// operation, requests are made from the document (valid ones, and for every
// constraint it states, one that breaks it), each is checked against the
// document with kin-openapi's openapi3filter, sent to the real handler, and
// the response must be documented for that operation and match its schema:
//
//   - a request the document accepts gets a 2xx answer;
//   - a request the document refuses (a parameter or body breaking its
//     schema, malformed JSON, another content type) gets a documented 4xx;
//   - a path parameter naming nothing that exists gets a documented 4xx.
//
// Nothing here names a route, a field or a status code, so the test follows
// the document as it changes. The hand-written exchanges in httpapi_test.go
// check the messages; this checks that handler and document agree.

func TestDocumentedOperationsInMemory(t *testing.T) {
	runDocumented(t, newHandler(&memStore{}, readiness{}, io.Discard))
}

func TestIntegrationDocumentedOperationsOnPostgres(t *testing.T) {
	runDocumented(t, newHandler(notes.NewStore(dbtest.NewPool(t), 0), readiness{}, io.Discard))
}

// operation is one documented method and path.
type operation struct {
	method, path string
	op           *openapi3.Operation
	params       openapi3.Parameters // path-level and operation-level
}

// call is one request the contract makes.
type call struct {
	name        string
	path, query string
	contentType string
	body        []byte
	wantValid   bool // what the document says of the request
	wantClass   int  // 2 or 4: the status class the handler must answer with
}

func runDocumented(t *testing.T, h http.Handler) {
	s := loadSpec(t)
	textIfString(t, "application/yaml")
	// Values the service handed out (the id of a created note), for the
	// path parameters of later calls.
	seen := map[string]any{}
	answered := map[string]bool{}
	for _, o := range operations(s.doc) {
		for _, c := range calls(o, seen) {
			t.Run(o.method+" "+o.path+"/"+c.name, func(t *testing.T) {
				status := s.exchange(t, h, o, c, seen)
				answered[o.method+" "+o.path+" "+strconv.Itoa(status)] = true
			})
		}
	}
	// What the document promises but no request reached (a 500, a 503):
	// those need a failing dependency, which the hand-written tests fake.
	for _, o := range operations(s.doc) {
		for code := range o.op.Responses.Map() {
			if code != "default" && !answered[o.method+" "+o.path+" "+code] {
				t.Logf("not exercised here: %s %s -> %s", o.method, o.path, code)
			}
		}
	}
}

// textIfString makes openapi3filter read bodies of contentType as text when
// the document's schema for them is a string (the service's own YAML
// document is served as opaque text), and as before otherwise; the
// decoders are global, so the previous one is put back after t.
func textIfString(t *testing.T, contentType string) {
	prev := openapi3filter.RegisteredBodyDecoder(contentType)
	openapi3filter.RegisterBodyDecoder(contentType, func(r io.Reader, h http.Header, s *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
		if s != nil && s.Value != nil && s.Value.Type.Is(openapi3.TypeString) || prev == nil {
			b, err := io.ReadAll(r)
			return string(b), err
		}
		return prev(r, h, s, enc)
	})
	t.Cleanup(func() {
		if prev == nil {
			openapi3filter.UnregisterBodyDecoder(contentType)
			return
		}
		openapi3filter.RegisterBodyDecoder(contentType, prev)
	})
}

// exchange checks c against the document, sends it to h and checks the
// answer; it returns the status.
func (s spec) exchange(t *testing.T, h http.Handler, o operation, c call, seen map[string]any) int {
	t.Helper()
	target := c.path
	if c.query != "" {
		target += "?" + c.query
	}
	newRequest := func() *http.Request {
		req := httptest.NewRequest(o.method, target, bytes.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		return req
	}

	req := newRequest()
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: the router built from openapi.yaml does not find it: %v", o.method, target, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true}}
	if err := openapi3filter.ValidateRequest(t.Context(), in); (err == nil) != c.wantValid {
		t.Fatalf("the document %s this request, want it to %s: %v",
			map[bool]string{true: "accepts", false: "refuses"}[err == nil],
			map[bool]string{true: "accept", false: "refuse"}[c.wantValid], err)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest())
	if got := rec.Code / 100; got != c.wantClass {
		t.Errorf("%s %s -> %d, want a %dxx\nbody: %s", o.method, target, rec.Code, c.wantClass, rec.Body)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: newRequest(), PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s -> %d does not match openapi.yaml: %v\nbody: %s", o.method, target, rec.Code, err, rec.Body)
	}
	if rec.Code/100 == 2 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		var fields map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &fields) == nil {
			for k, v := range fields {
				switch v.(type) {
				case float64, string:
					seen[k] = v
				}
			}
		}
	}
	return rec.Code
}

// operations lists the document's operations, those that create things
// first (POST, PUT), then the rest, each group in path order.
func operations(doc *openapi3.T) []operation {
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			params := slices.Clone(item.Parameters)
			params = append(params, op.Parameters...)
			ops = append(ops, operation{method, path, op, params})
		}
	}
	rank := func(m string) int {
		switch m {
		case http.MethodPost, http.MethodPut:
			return 0
		case http.MethodDelete:
			return 2
		}
		return 1
	}
	slices.SortFunc(ops, func(a, b operation) int {
		if d := rank(a.method) - rank(b.method); d != 0 {
			return d
		}
		return strings.Compare(a.path+" "+a.method, b.path+" "+b.method)
	})
	return ops
}

// calls makes the requests for o from the document: one valid request, then
// one breaking each constraint the document states.
func calls(o operation, seen map[string]any) []call {
	pathValues := map[string]string{}
	query := url.Values{}
	for _, p := range o.params {
		v := p.Value
		switch v.In {
		case openapi3.ParameterInPath:
			if s, ok := seen[v.Name]; ok {
				pathValues[v.Name] = fmt.Sprint(s)
			} else {
				pathValues[v.Name] = fmt.Sprint(sample(v.Schema.Value))
			}
		case openapi3.ParameterInQuery:
			query.Set(v.Name, fmt.Sprint(sample(v.Schema.Value)))
		}
	}
	fill := func(values map[string]string) string {
		p := o.path
		for k, v := range values {
			p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(v))
		}
		return p
	}

	var contentType string
	var body []byte
	var bodySchema *openapi3.Schema
	if rb := o.op.RequestBody; rb != nil && rb.Value != nil {
		for ct, mt := range rb.Value.Content {
			contentType = ct
			bodySchema = mt.Schema.Value
			body, _ = json.Marshal(sample(bodySchema))
			break
		}
	}
	valid := call{name: "valid", path: fill(pathValues), query: query.Encode(), contentType: contentType, body: body, wantValid: true, wantClass: 2}
	out := []call{valid}
	invalid := func(name string, change func(c *call)) {
		c := valid
		c.name, c.wantValid, c.wantClass = name, false, 4
		change(&c)
		out = append(out, c)
	}

	for _, p := range o.params {
		v := p.Value
		for _, bad := range badValues(v.Schema.Value) {
			name := fmt.Sprintf("%s %s=%s", v.In, v.Name, bad)
			switch v.In {
			case openapi3.ParameterInPath:
				invalid(name, func(c *call) {
					values := map[string]string{}
					for k, x := range pathValues {
						values[k] = x
					}
					values[v.Name] = bad
					c.path = fill(values)
				})
			case openapi3.ParameterInQuery:
				invalid(name, func(c *call) {
					q := url.Values{}
					for k, x := range query {
						q[k] = x
					}
					q.Set(v.Name, bad)
					c.query = q.Encode()
				})
			}
		}
		if v.In == openapi3.ParameterInPath {
			// Valid by the schema, but naming nothing.
			values := map[string]string{}
			for k, x := range pathValues {
				values[k] = x
			}
			values[v.Name] = fmt.Sprint(unknown(v.Schema.Value))
			c := valid
			c.name, c.path, c.wantClass = "unknown "+v.Name, fill(values), 4
			out = append(out, c)
		}
	}

	if bodySchema != nil {
		good := sample(bodySchema).(map[string]any)
		for _, b := range badBodies(bodySchema, good) {
			invalid("body "+b.name, func(c *call) { c.body = b.body })
		}
		invalid("body not JSON", func(c *call) { c.body = []byte(`{"`) })
		invalid("content type text/plain", func(c *call) { c.contentType, c.body = "text/plain", []byte("plain text") })
	}
	return out
}

// sample is a value the schema accepts: its example, default or first enum
// value if it has one, else the smallest value its constraints allow.
func sample(s *openapi3.Schema) any {
	switch {
	case s.Example != nil:
		return s.Example
	case s.Default != nil:
		return s.Default
	case len(s.Enum) > 0:
		return s.Enum[0]
	}
	switch {
	case s.Type.Is(openapi3.TypeObject):
		obj := map[string]any{}
		for name, p := range s.Properties {
			obj[name] = sample(p.Value)
		}
		return obj
	case s.Type.Is(openapi3.TypeArray):
		return []any{sample(s.Items.Value)}
	case s.Type.Is(openapi3.TypeInteger), s.Type.Is(openapi3.TypeNumber):
		if s.Min != nil {
			return int64(math.Ceil(*s.Min))
		}
		return 1
	case s.Type.Is(openapi3.TypeBoolean):
		return true
	case s.Format == "date-time":
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	}
	return strings.Repeat("x", int(max(s.MinLength, 1)))
}

// unknown is a value the schema accepts that no test created.
func unknown(s *openapi3.Schema) any {
	if s.Type.Is(openapi3.TypeInteger) || s.Type.Is(openapi3.TypeNumber) {
		if s.Max != nil {
			return int64(*s.Max)
		}
		return int64(math.MaxInt64)
	}
	return "no-such-" + strings.Repeat("x", int(s.MinLength))
}

// badValues are parameter values the schema refuses.
func badValues(s *openapi3.Schema) []string {
	var bad []string
	if s.Type.Is(openapi3.TypeInteger) || s.Type.Is(openapi3.TypeNumber) {
		bad = append(bad, "abc")
		if s.Min != nil {
			bad = append(bad, strconv.FormatInt(int64(math.Ceil(*s.Min))-1, 10))
		}
		if s.Max != nil {
			bad = append(bad, strconv.FormatInt(int64(math.Floor(*s.Max))+1, 10))
		}
	}
	if s.MaxLength != nil {
		bad = append(bad, strings.Repeat("x", int(*s.MaxLength)+1))
	}
	return bad
}

type badBody struct {
	name string
	body []byte
}

// badBodies are object bodies the schema refuses, each breaking one rule.
func badBodies(s *openapi3.Schema, good map[string]any) []badBody {
	var out []badBody
	with := func(name string, change func(m map[string]any)) {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		change(m)
		b, _ := json.Marshal(m)
		out = append(out, badBody{name, b})
	}
	for _, r := range s.Required {
		with("without "+r, func(m map[string]any) { delete(m, r) })
	}
	if s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
		with("with an unknown field", func(m map[string]any) { m["no_such_field"] = "x" })
	}
	for name, p := range s.Properties {
		v := p.Value
		switch {
		case v.Type.Is(openapi3.TypeString):
			with(name+" not a string", func(m map[string]any) { m[name] = 5 })
		case v.Type.Is(openapi3.TypeInteger), v.Type.Is(openapi3.TypeNumber):
			with(name+" not a number", func(m map[string]any) { m[name] = "x" })
		}
		if v.MaxLength != nil {
			with(name+" too long", func(m map[string]any) { m[name] = strings.Repeat("x", int(*v.MaxLength)+1) })
		}
		if v.MinLength > 0 {
			with(name+" too short", func(m map[string]any) { m[name] = strings.Repeat("x", int(v.MinLength)-1) })
		}
	}
	slices.SortFunc(out, func(a, b badBody) int { return strings.Compare(a.name, b.name) })
	return out
}
