package template

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/gitinfo/gittest"
)

// fixture is a small repository shaped like this one, named as the origin
// is, committed.
func fixture(t *testing.T) *gittest.Repo {
	t.Helper()
	repo := gittest.New(t)
	m, n := Origin.Module, Origin.Name
	img := originImage()
	files := map[string]string{
		"go.mod":                  "module " + m + "\n\ngo 1.26.0\n",
		"go.sum":                  m + "/x v1.0.0 h1:abc=\n",
		"tools/go.mod":            "module " + m + "/tools\n\ngo 1.26.0\n",
		"tools/actionlint/go.mod": "module " + m + "/tools/actionlint\n\ngo 1.26.0\n",
		"app/main.go":             "package main\n\nimport (\n\t\"fmt\"\n\n\t\"" + m + "/app/internal/config\"\n)\n\nfunc main() { fmt.Println(config.X) }\n",
		"docker-compose.yml":      "name: " + n + "\nservices:\n  app:\n    build: .\n",
		"docker-compose.prod.yml": "services:\n  app:\n    image: ${REGISTRY:-" + strings.Replace(img, "/", "}/${IMAGE_NAME:-", 1) + "}:${IMAGE_TAG:?}\n    secrets: [database_url]\n  postgres:\n    image: postgres\n" +
			"secrets:\n  database_url:\n    external: true\n  postgres_password:\n    external: true\n",
		"deploy/environments.yml": "environments:\n" +
			"  local:\n    stack: " + n + "-local\n    image: 127.0.0.1:5000/" + n + "\n    files: [docker-compose.prod.yml]\n    registry:\n      port: 5000\n" +
			"  staging:\n    endpoint: ssh://deploy@staging.example.com\n    stack: " + n + "-staging\n    image: " + img + "\n    files: [docker-compose.prod.yml]\n" +
			"  production:\n    endpoint: ssh://deploy@production.example.com\n    stack: " + n + "\n    image: " + img + "\n    files: [docker-compose.prod.yml]\n",
		"README.md":                          "# " + n + "\n\n`flock /tmp/" + n + "-docker-tests.lock go tool mage test`\n",
		"magefiles/dockerimage/name_test.go": "package dockerimage\n\nvar x = []string{\"" + titleCase(originImagePath()) + "\", \"" + img + "\"}\n",
		"magefiles/deploy/history.go":        "package deploy\n\nconst labelPrefix = \"" + kept[0].Text + "\"\n",
		"logo.bin":                           "\x00\x01" + n + "\x00",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(repo.Dir, name), content)
	}
	repo.Git("add", "-A")
	repo.Git("commit", "-q", "-m", "fixture")
	return repo
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The identity the tests rename to: no origin's, so that the tests mean
// the same in a service made from this template.
var quokka = Options{Module: "example.net/qa/quokka"}

func initIn(t *testing.T, dir string, o Options, dryRun bool) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Init(context.Background(), dir, o, dryRun, &out)
	return out.String(), err
}

func TestInitRenamesThenChangesNothing(t *testing.T) {
	repo := fixture(t)
	o := quokka
	o.Registry = "registry.example.com:5000/qa"
	o.Endpoints = map[string]string{"staging": "ssh://deploy@10.1.2.3"}
	out, err := initIn(t, repo.Dir, o, false)
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	want := map[string][]string{
		"go.mod":                  {"module example.net/qa/quokka\n"},
		"tools/go.mod":            {"module example.net/qa/quokka/tools\n"},
		"tools/actionlint/go.mod": {"module example.net/qa/quokka/tools/actionlint\n"},
		"app/main.go":             {`"example.net/qa/quokka/app/internal/config"`},
		"docker-compose.yml":      {"name: quokka\n"},
		"docker-compose.prod.yml": {"image: ${REGISTRY:-registry.example.com:5000}/${IMAGE_NAME:-qa/quokka}:${IMAGE_TAG:?}"},
		"deploy/environments.yml": {
			"stack: quokka-local\n    image: 127.0.0.1:5000/quokka\n",
			"endpoint: ssh://deploy@10.1.2.3\n    stack: quokka-staging\n    image: registry.example.com:5000/qa/quokka\n",
			"endpoint: ssh://deploy@CHANGE-ME.production.example\n    stack: quokka\n    image: registry.example.com:5000/qa/quokka\n",
		},
		"README.md": {"# quokka\n", "/tmp/quokka-docker-tests.lock"},
		// There the registry is dockerimage's default, not ours.
		"magefiles/dockerimage/name_test.go": {`"Qa/Quokka", "ghcr.io/qa/quokka"`},
		"magefiles/deploy/history.go":        {kept[0].Text},
	}
	for file, parts := range want {
		got := readFile(t, repo.Dir, file)
		for _, p := range parts {
			if !strings.Contains(got, p) {
				t.Errorf("%s lacks %q:\n%s", file, p, got)
			}
		}
	}
	for _, file := range []string{"go.sum", "logo.bin"} {
		if got := readFile(t, repo.Dir, file); !strings.Contains(got, Origin.Module) && !strings.Contains(got, Origin.Name) {
			t.Errorf("%s was changed: %q", file, got)
		}
	}
	for _, s := range []string{
		"rename " + Origin.String() + " -> example.net/qa/quokka (quokka)",
		"staging endpoint:", "(-staginghost; was ssh://deploy@staging.example.com)",
		"(placeholder: set -productionhost=ssh://user@host",
		"  deploy/environments.yml             service name 4, image repository 2, endpoint 2\n",
		"changed 9 file(s): module path 4 in 4 file(s); service name 7 in 3 file(s); image repository 5 in 3 file(s); endpoint 2 in 1 file(s)",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}

	repo.Git("commit", "-q", "-am", "rename")
	for _, again := range []Options{o, quokka} {
		out, err := initIn(t, repo.Dir, again, false)
		if err != nil || !strings.Contains(out, "nothing to change") {
			t.Errorf("second run with %+v: %v\n%s", again, err, out)
		}
	}
	if st := repo.Git("status", "--porcelain"); st != "" {
		t.Errorf("a second run changed files:\n%s", st)
	}
}

func TestInitRefusesUncommittedChanges(t *testing.T) {
	repo := fixture(t)
	writeFile(t, filepath.Join(repo.Dir, "README.md"), "# changed\n")
	writeFile(t, filepath.Join(repo.Dir, "notes.txt"), "new\n")
	_, err := initIn(t, repo.Dir, quokka, false)
	if err == nil || !strings.Contains(err.Error(), "uncommitted changes") || !strings.Contains(err.Error(), "README.md") || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("err = %v, want a refusal naming README.md and notes.txt", err)
	}
	if got := readFile(t, repo.Dir, "go.mod"); !strings.Contains(got, Origin.Module) {
		t.Errorf("go.mod changed after a refusal:\n%s", got)
	}
}

func TestInitNeedsAGitTree(t *testing.T) {
	gittest.Isolate(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module "+Origin.Module+"\n")
	if _, err := initIn(t, dir, quokka, false); err == nil || !strings.Contains(err.Error(), "git init") {
		t.Errorf("err = %v, want one saying to git init first", err)
	}
}

func TestInitDryRunPrintsTheEditsAndChangesNothing(t *testing.T) {
	repo := fixture(t)
	out, err := initIn(t, repo.Dir, quokka, true)
	if err != nil {
		t.Fatal(err)
	}
	lines := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^go\.mod +module path +` + regexp.QuoteMeta(Origin.Module) + ` -> example\.net/qa/quokka +x1$`),
		regexp.MustCompile(`(?m)^deploy/environments\.yml +endpoint +ssh://deploy@staging\.example\.com -> ssh://deploy@CHANGE-ME\.staging\.example +x1$`),
		regexp.MustCompile(`(?m)^deploy/environments\.yml +image repository +` + regexp.QuoteMeta(originImage()) + ` -> ghcr\.io/change-me/quokka +x2$`),
		regexp.MustCompile(`(?m)^would change 9 file\(s\): `),
	}
	for _, re := range lines {
		if !re.MatchString(out) {
			t.Errorf("dry run output lacks %s:\n%s", re, out)
		}
	}
	if st := repo.Git("status", "--porcelain"); st != "" {
		t.Errorf("a dry run changed files:\n%s", st)
	}
}

func TestInitRefusesBadInput(t *testing.T) {
	repo := fixture(t)
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{name: "module path", o: Options{Module: "quokka"}, wantErr: "module path: malformed module path \"quokka\": missing dot in first path element"},
		{name: "name", o: Options{Module: "example.net/qa/quokka", Name: "Quokka"}, wantErr: "lower-case letters"},
		{name: "name from the module path", o: Options{Module: "example.net/qa/9lives"}, wantErr: "give one with -name"},
		{name: "name too long", o: Options{Module: "example.net/qa/quokka", Name: strings.Repeat("l", 33)}, wantErr: "at most 32: the deploy names secret versions <stack>_postgres_password_v<N>"},
		{name: "registry", o: Options{Module: "example.net/qa/quokka", Registry: "qa"}, wantErr: "must start with the registry's host"},
		{name: "endpoint", o: Options{Module: "example.net/qa/quokka", Endpoints: map[string]string{"staging": "10.1.2.3"}}, wantErr: "-staginghost \"10.1.2.3\": want ssh://user@host"},
		{name: "environment", o: Options{Module: "example.net/qa/quokka", Endpoints: map[string]string{"qa": "ssh://deploy@10.1.2.3"}}, wantErr: "no environment qa with an endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := initIn(t, repo.Dir, tt.o, false)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if st := repo.Git("status", "--porcelain"); st != "" {
		t.Errorf("a refused run changed files:\n%s", st)
	}
}

// From a terminal, what no flag gives is asked for; an empty answer keeps
// the placeholder, and a bad one is asked again.
func TestInitAsksForWhatNoFlagGives(t *testing.T) {
	repo := fixture(t)
	answers := map[string][]string{
		"image registry and owner, like ghcr.io/acme":        {"Not A Registry", "registry.example.com/qa"},
		"production's Swarm manager, like ssh://deploy@host": {"ssh://deploy@10.9.9.9"},
		"staging's Swarm manager, like ssh://deploy@host":    {""},
	}
	o := quokka
	o.Ask = func(q, def string) (string, error) {
		if _, after, ok := strings.Cut(q, "; "); ok {
			if !strings.Contains(q, "use lower case") {
				t.Errorf("asked again without saying why: %q", q)
			}
			q = after
		}
		a, ok := answers[q]
		if !ok || len(a) == 0 {
			return "", errors.New("unexpected question " + q)
		}
		answers[q] = a[1:]
		return a[0], nil
	}
	if out, err := initIn(t, repo.Dir, o, false); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	envs := readFile(t, repo.Dir, "deploy/environments.yml")
	for _, s := range []string{"image: registry.example.com/qa/quokka", "endpoint: ssh://deploy@10.9.9.9", "endpoint: ssh://deploy@CHANGE-ME.staging.example"} {
		if !strings.Contains(envs, s) {
			t.Errorf("environments lack %q:\n%s", s, envs)
		}
	}
	// Once set, nothing is asked again: the image and production's
	// endpoint are the user's, and staging's placeholder is asked for.
	repo.Git("commit", "-q", "-am", "rename")
	answers["staging's Swarm manager, like ssh://deploy@host"] = []string{""}
	if out, err := initIn(t, repo.Dir, o, false); err != nil || !strings.Contains(out, "nothing to change") {
		t.Errorf("second run: %v\n%s", err, out)
	}
}

// gonew rewrites go.mod and import paths only; template:init finishes the
// job from the origin it knows.
func TestInitAfterGonew(t *testing.T) {
	repo := fixture(t)
	for _, f := range []string{"go.mod", "app/main.go"} {
		writeFile(t, filepath.Join(repo.Dir, f), strings.ReplaceAll(readFile(t, repo.Dir, f), Origin.Module, quokka.Module))
	}
	repo.Git("commit", "-q", "-am", "gonew")
	out, err := initIn(t, repo.Dir, quokka, false)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "rename "+quokka.Module+" ("+Origin.Name+") -> "+quokka.Module+" (quokka)") || !strings.Contains(out, "rename "+Origin.String()) {
		t.Errorf("output does not name both identities:\n%s", out)
	}
	for _, f := range []string{"tools/go.mod", "README.md", "deploy/environments.yml"} {
		if got := readFile(t, repo.Dir, f); strings.Contains(got, Origin.Module) || strings.Contains(got, Origin.Name) {
			t.Errorf("%s still names the origin:\n%s", f, got)
		}
	}
}

// A second rename follows the first: the registry chosen then is kept.
func TestInitRenamesAgain(t *testing.T) {
	repo := fixture(t)
	o := quokka
	o.Registry = "registry.example.com/qa"
	if out, err := initIn(t, repo.Dir, o, false); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	repo.Git("commit", "-q", "-am", "rename")
	if out, err := initIn(t, repo.Dir, Options{Module: "example.net/qa/journal"}, false); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	envs := readFile(t, repo.Dir, "deploy/environments.yml")
	for _, s := range []string{"stack: journal-staging", "image: registry.example.com/qa/journal", "image: 127.0.0.1:5000/journal"} {
		if !strings.Contains(envs, s) {
			t.Errorf("environments lack %q:\n%s", s, envs)
		}
	}
	if got := readFile(t, repo.Dir, "go.mod"); !strings.HasPrefix(got, "module example.net/qa/journal\n") {
		t.Errorf("go.mod:\n%s", got)
	}
}

// The new name may contain the old one; a second run must not add it
// again.
func TestInitWithANameThatContainsTheOldOne(t *testing.T) {
	repo := fixture(t)
	o := Options{Module: Origin.Module + "/v2", Name: Origin.Name + "-ng"}
	if out, err := initIn(t, repo.Dir, o, false); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	repo.Git("commit", "-q", "-am", "rename")
	if out, err := initIn(t, repo.Dir, o, false); err != nil || !strings.Contains(out, "nothing to change") {
		t.Errorf("second run: %v\n%s", err, out)
	}
	if got := readFile(t, repo.Dir, "docker-compose.yml"); !strings.HasPrefix(got, "name: "+Origin.Name+"-ng\n") {
		t.Errorf("docker-compose.yml:\n%s", got)
	}
}

// What a run cannot fix it says: the new name already meaning something
// else, and tool modules a module copy (gonew) left out.
func TestInitWarns(t *testing.T) {
	repo := fixture(t)
	writeFile(t, filepath.Join(repo.Dir, "zoo.txt"), "the quokka-house and the quokka\n")
	repo.Git("rm", "-q", "-r", "tools")
	repo.Git("add", "-A")
	repo.Git("commit", "-q", "-m", "zoo")
	out, err := initIn(t, repo.Dir, quokka, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`warning: "quokka" already appears in 1 file(s) meaning something else (zoo.txt (2))`,
		"warning: tools/go.mod is missing",
		"warning: tools/actionlint/go.mod is missing",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if got := readFile(t, repo.Dir, "zoo.txt"); got != "the quokka-house and the quokka\n" {
		t.Errorf("zoo.txt changed: %q", got)
	}
}
