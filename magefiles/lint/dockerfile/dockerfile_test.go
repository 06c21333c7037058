package dockerfile

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/lint/problem"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		fixture string
		want    []string // one "line: substring" per problem, in order
	}{
		{"good", nil},
		{"no-user", []string{"4: final stage (unnamed) sets no USER"}},
		{"root-user", []string{"3: final stage (unnamed): USER 0:0: uid 0 is root"}},
		{"named-user", []string{"3: final stage (unnamed): USER nobody: want a numeric uid[:gid]"}},
		// A global ARG is seen in a stage only when the stage declares it.
		{"user-from-arg", []string{"9: final stage not-redeclared: USER ${UID}: want a numeric uid[:gid]"}},
		{"shell-form", []string{
			"4: HEALTHCHECK in shell form",
			"5: ENTRYPOINT in shell form",
			"6: CMD in shell form",
		}},
		{"latest-base", []string{"1: FROM golang:latest: latest changes under you"}},
		{"untagged-base-from-arg", []string{
			"4: FROM ${BUILDER_IMAGE} (golang with the ARG defaults): no tag, which means latest",
			"7: FROM ${UNSET_IMAGE}: uses ARG UNSET_IMAGE, which has no default",
			"11: COPY --from=alpine: no tag",
		}},
		{"secrets", []string{
			"1: ARG GITHUB_TOKEN: looks like a secret",
			"3: ARG NPM_API_KEY: looks like a secret",
			"4: ENV DB_PASSWORD: looks like a secret",
			"4: ENV CACHE_ADDR: looks like a secret",
		}},
		{"no-healthcheck", []string{
			"4: final stage with-none: HEALTHCHECK NONE disables",
			"7: final stage without has no HEALTHCHECK",
		}},
		{"unparsable", []string{"3: unknown instruction: SERVE"}},
		{"buildkit-checks", []string{
			"1: 'as' and 'FROM' keywords' casing do not match (BuildKit check FromAsCasing)",
			"2: Maintainer instruction is deprecated",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			err := CheckFile(filepath.Join("testdata", tt.fixture+".Dockerfile"), "Dockerfile")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want no problems, got:\n%v", err)
				}
				return
			}
			var ps *problem.List
			if !errors.As(err, &ps) {
				t.Fatalf("want *problem.List, got %v", err)
			}
			got := strings.Split(ps.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], "Dockerfile:") || !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want Dockerfile:%s...", i, got[i], w)
				}
			}
		})
	}
}

// The repository's own Dockerfile keeps the rules: mage lint checks it too,
// but a change here should fail here first.
func TestRepositoryDockerfile(t *testing.T) {
	if err := CheckFile(filepath.Join("..", "..", "..", "Dockerfile"), "Dockerfile"); err != nil {
		t.Fatal(err)
	}
}

// Secret values never appear in a problem: only names.
func TestProblemsNeverQuoteValues(t *testing.T) {
	err := CheckFile(filepath.Join("testdata", "secrets.Dockerfile"), "Dockerfile")
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "=dev") {
		t.Fatalf("got %v", err)
	}
}

func TestNumericNonRoot(t *testing.T) {
	tests := []struct {
		user string
		ok   bool
	}{
		{"65532", true},
		{"65532:65532", true},
		{"1000:0", true}, // group root is not user root
		{"0", false},
		{"000", false},
		{"0:65532", false},
		{"root", false},
		{"app:app", false},
		{"1000:app", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := numericNonRoot(tt.user); (err == nil) != tt.ok {
			t.Errorf("numericNonRoot(%q) = %v, want ok=%v", tt.user, err, tt.ok)
		}
	}
}
