package template

import (
	"go/format"
	"strings"
	"testing"
)

// The rules of a rename from the origin to example.net/qa/quokka, with
// its image going from the origin's default registry to
// registry.example.com:5000/acme.
func testRewriter(t *testing.T, to Identity) *rewriter {
	t.Helper()
	reps, protected := identityRules([]Identity{Origin}, to)
	r, p := imageRules(originImage(), "registry.example.com:5000/acme/"+to.Name)
	reps, protected = append(reps, r...), append(protected, p...)
	for _, k := range kept {
		protected = append(protected, replacement{old: k.Text, new: k.Text, bound: exactBound})
	}
	w, err := newRewriter(withTitleCase(reps), withTitleCase(protected))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// originImage is the origin's image repository: its default registry and
// its name.
func originImage() string { return defaultRegistry(Origin.Module) + "/" + Origin.Name }

// originImagePath is that repository without the registry host.
func originImagePath() string {
	_, p, _ := strings.Cut(originImage(), "/")
	return p
}

func TestRewrite(t *testing.T) {
	m, n := Origin.Module, Origin.Name
	to := Identity{Module: "example.net/qa/quokka", Name: "quokka"}
	tests := []struct {
		name, file, in, want string
	}{
		{name: "import", file: "app/main.go", in: `import "` + m + `/app/internal/config"`, want: `import "example.net/qa/quokka/app/internal/config"`},
		{name: "module directive", file: "go.mod", in: "module " + m + "\n", want: "module example.net/qa/quokka\n"},
		{name: "nested module", file: "tools/go.mod", in: "module " + m + "/tools\n", want: "module example.net/qa/quokka/tools\n"},
		{name: "ldflags", file: "Dockerfile", in: "-X " + m + "/app/internal/buildinfo.Version=${VERSION}", want: "-X example.net/qa/quokka/app/internal/buildinfo.Version=${VERSION}"},
		{name: "source URL", file: "Dockerfile", in: "ARG SOURCE=https://" + m, want: "ARG SOURCE=https://example.net/qa/quokka"},
		{name: "clone URL", file: "README.md", in: "git clone https://" + m + ".git", want: "git clone https://example.net/qa/quokka.git"},
		{name: "another module sharing the prefix", file: "go.mod", in: "require " + m + "-client v1.0.0", want: "require " + m + "-client v1.0.0"},
		{name: "compose project", file: "docker-compose.yml", in: "name: " + n + "\n", want: "name: quokka\n"},
		{name: "stacks", file: "deploy/environments.yml", in: "stack: " + n + "-staging\nstack: " + n + "\n", want: "stack: quokka-staging\nstack: quokka\n"},
		{name: "local registry image", file: "deploy/environments.yml", in: "image: 127.0.0.1:5000/" + n, want: "image: 127.0.0.1:5000/quokka"},
		{name: "label prefix", file: "magefiles/devdb/devdb.go", in: `"dev.` + n + `.role"`, want: `"dev.quokka.role"`},
		{name: "lock path", file: ".ci/run", in: "lock=/tmp/" + n + "-docker-tests.lock", want: "lock=/tmp/quokka-docker-tests.lock"},
		{name: "heading", file: "README.md", in: "# " + n + "\n", want: "# quokka\n"},
		{name: "a longer name is another name", file: "x.txt", in: "my-" + n + " " + n + "s " + n + "_x", want: "my-" + n + " " + n + "s " + n + "_x"},
		{name: "image in environments", file: "deploy/environments.yml", in: "image: " + originImage() + "\n", want: "image: registry.example.com:5000/acme/quokka\n"},
		{name: "image with tag", file: "magefiles/lint/files_test.go", in: `"` + originImage() + `:latest"`, want: `"registry.example.com:5000/acme/quokka:latest"`},
		{
			name: "production stack file's default", file: "docker-compose.prod.yml",
			in:   "image: ${REGISTRY:-ghcr.io}/${IMAGE_NAME:-" + originImagePath() + "}:${IMAGE_TAG:?set}",
			want: "image: ${REGISTRY:-registry.example.com:5000}/${IMAGE_NAME:-acme/quokka}:${IMAGE_TAG:?set}",
		},
		{
			name: "dockerimage's default registry stays", file: "magefiles/dockerimage/name_test.go",
			in:   `{ghRepo: "` + titleCase(originImagePath()) + `", want: "` + originImage() + `"}`,
			want: `{ghRepo: "Acme/Quokka", want: "ghcr.io/acme/quokka"}`,
		},
		{name: "kept label namespace", file: "magefiles/deploy/history.go", in: `labelPrefix = "` + kept[0].Text + `"`, want: `labelPrefix = "` + kept[0].Text + `"`},
		{name: "already renamed", file: "go.mod", in: "module example.net/qa/quokka\nname: quokka\n", want: "module example.net/qa/quokka\nname: quokka\n"},
	}
	w := testRewriter(t, to)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := w.rewrite(tt.file, tt.in)
			if got != tt.want {
				t.Errorf("rewrite(%s)\n in: %s\ngot: %s\nwant: %s", tt.file, tt.in, got, tt.want)
			}
		})
	}
}

// A new name or module path that contains the old one is left alone on
// the next run: the longest match wins, and the new identity is protected.
func TestRewriteTwiceWhenNewContainsOld(t *testing.T) {
	to := Identity{Module: Origin.Module + "/v2", Name: Origin.Name + "-api"}
	w := testRewriter(t, to)
	lines := func(id Identity) string {
		return strings.Join([]string{"module " + id.Module, `import "` + id.Module + `/app"`, "git clone https://" + id.Module + ".git", "stack: " + id.Name + "-staging", "name: " + id.Name}, "\n")
	}
	once, counts := w.rewrite("go.mod", lines(Origin))
	want := lines(to)
	if once != want {
		t.Fatalf("first run:\n%s\nwant:\n%s", once, want)
	}
	if n := counts[hit{KindModule, Origin.Module, to.Module}]; n != 2 {
		t.Errorf("module path replaced %d times, want 2 (and the clone URL once)", n)
	}
	if twice, counts := w.rewrite("go.mod", once); twice != once || len(counts) != 0 {
		t.Errorf("second run changed it (%v):\n%s", counts, twice)
	}
}

func TestConflictingRulesAreRefused(t *testing.T) {
	_, err := newRewriter([]replacement{
		{kind: KindName, old: "a", new: "b"},
		{kind: KindImage, old: "a", new: "c"},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "conflicting rules") {
		t.Errorf("err = %v, want conflicting rules", err)
	}
}

func TestTitleCase(t *testing.T) {
	for in, want := range map[string]string{
		"acme/quokka":      "Acme/Quokka",
		"change-me/quokka": "Change-Me/Quokka",
		"quokka":           "Quokka",
		"ghcr.io/x":        "Ghcr.Io/X",
	} {
		if got := titleCase(in); got != want {
			t.Errorf("titleCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFinishReformatsGoAndChecksGoMod(t *testing.T) {
	// Sorted before the rename, not after: gofmt sorts it again.
	before := "package x\n\nimport (\n\t\"" + Origin.Module + "/a\"\n\t\"zy.example/other\"\n)\n"
	if f, err := format.Source([]byte(before)); err != nil || string(f) != before {
		t.Fatalf("fixture is not gofmt'ed: %s", f)
	}
	after := strings.ReplaceAll(before, Origin.Module, "zz.example/acme/quokka")
	got, err := finish("x/x.go", []byte(before), []byte(after))
	if err != nil {
		t.Fatal(err)
	}
	if want := "package x\n\nimport (\n\t\"zy.example/other\"\n\t\"zz.example/acme/quokka/a\"\n)\n"; string(got) != want {
		t.Errorf("finish:\n%s\nwant:\n%s", got, want)
	}
	// Unformatted source (a testdata file, say) is left as renamed.
	odd := "package x\nimport \"zz.example/acme/quokka/a\"\n"
	if got, err := finish("x/testdata/odd.go", []byte(odd), []byte(odd)); err != nil || string(got) != odd {
		t.Errorf("finish(unformatted) = %q, %v", got, err)
	}
	if _, err := finish("go.mod", nil, []byte("module \"unterminated\n")); err == nil {
		t.Error("finish accepted a go.mod that does not parse")
	}
}
