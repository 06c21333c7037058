package openapi

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/lint/problem"
)

func TestCheckFile(t *testing.T) {
	tests := []struct {
		fixture string
		want    string // the first problem: "line: substring"
	}{
		{"good", ""},
		{"no-version", "4: invalid info: value of version must be a non-empty string"},
		{"bad-default", `10: invalid paths: invalid path /notes/{id}: invalid operation GET: parameter "id" schema is invalid: invalid default`},
		{"bad-example", `26: invalid components: schema "Note": invalid example`},
		{"dangling-ref", `19: failed to resolve "Nope"`},
		{"undeclared-path-param", "6: invalid paths: operation GET /notes/{id} must define exactly all path parameters"},
		{"no-responses", "7: invalid paths: invalid path /notes/{id}: invalid operation GET: value of responses must be an object"},
		{"yaml-syntax", "9: failed to unmarshal data"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			err := CheckFile(t.Context(), filepath.Join("testdata", tt.fixture+".yaml"), "api.yaml")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want no problems, got:\n%v", err)
				}
				return
			}
			var ps *problem.List
			if !errors.As(err, &ps) {
				t.Fatalf("want *problem.List, got %v", err)
			}
			first, _, _ := strings.Cut(ps.Error(), "\n")
			if !strings.HasPrefix(first, "api.yaml:"+tt.want) {
				t.Fatalf("first problem = %q, want api.yaml:%s...", first, tt.want)
			}
		})
	}
}

func TestServiceDocument(t *testing.T) {
	if err := CheckFile(t.Context(), filepath.Join("..", "..", "..", "app", "internal", "httpapi", "openapi.yaml"), "openapi.yaml"); err != nil {
		t.Fatal(err)
	}
}
