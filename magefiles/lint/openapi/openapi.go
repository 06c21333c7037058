// Package openapi validates an OpenAPI document with kin-openapi, the
// library the service's contract tests check requests and responses with,
// and names the line at fault.
package openapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/fractionate/service-template/magefiles/lint/problem"
)

// CheckFile loads and validates the document at path (examples and
// defaults included), reporting every problem at once. Errors name the
// file as label. External references are refused: the service embeds one
// file and serves it as it is.
func CheckFile(ctx context.Context, path, label string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	loader := openapi3.NewLoader()
	loader.IncludeOrigin = true
	doc, err := loader.LoadFromData(src)
	if err != nil {
		ps := &problem.List{File: label}
		ps.Add(loadErrorLine(err, src), "%s", firstLine(err.Error()))
		return ps.Err()
	}
	ctx = openapi3.WithValidationOptions(ctx, openapi3.EnableMultiError(), openapi3.EnableExamplesValidation())
	err = doc.Validate(ctx)
	if err == nil {
		return nil
	}
	var all openapi3.MultiError
	if !errors.As(err, &all) {
		all = openapi3.MultiError{err}
	}
	ps := &problem.List{File: label}
	for _, e := range all {
		ps.Add(validationErrorLine(e), "%s", firstLine(e.Error()))
	}
	return ps.Err()
}

// firstLine drops the schema and value dumps kin-openapi appends.
func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(first)
}

var (
	yamlLine  = regexp.MustCompile(`\bline (\d+)\b`)
	quotedRef = regexp.MustCompile(`"(#/[^"]+)"`)
)

// loadErrorLine finds where a load error points: YAML errors carry their
// line; a reference that does not resolve is found by its text.
func loadErrorLine(err error, src []byte) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		var n int
		_, _ = fmt.Sscan(m[1], &n)
		return n
	}
	if m := quotedRef.FindStringSubmatch(err.Error()); m != nil {
		for i, l := range strings.Split(string(src), "\n") {
			if strings.Contains(l, m[1]) {
				return i + 1
			}
		}
	}
	return 0
}

// validationErrorLine is the line of the element a validation error is
// about. kin-openapi records an Origin (the element's key and the lines of
// its fields) on the errors of its chain; the deepest one is the most
// precise, and of its fields the one the message names, if exactly one.
func validationErrorLine(err error) int {
	var origin *openapi3.Origin
	for e := err; e != nil; e = errors.Unwrap(e) {
		if o := originOf(e); o != nil {
			origin = o
		}
	}
	if origin == nil {
		return 0
	}
	msg := err.Error()
	var named []openapi3.Location
	for _, f := range origin.Fields {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(msg) {
			named = append(named, f)
		}
	}
	if len(named) == 1 {
		return named[0].Line
	}
	if origin.Key != nil {
		return origin.Key.Line
	}
	return 0
}

// originOf reads the Origin field that kin-openapi's typed validation
// errors carry (there is no interface for it).
func originOf(err error) *openapi3.Origin {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	f := v.FieldByName("Origin")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*openapi3.Origin]() || f.IsNil() {
		return nil
	}
	return f.Interface().(*openapi3.Origin)
}
