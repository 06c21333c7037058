package template

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// repoRoot is this repository's root, from the package's directory.
const repoRoot = "../.."

// theTemplate is the template repository's module path, spelled in pieces
// because template:init renames every whole mention of it.
var theTemplate = "github.com/fractionate/service" + "-template"

// onlyInTheTemplate skips a test that holds the template's own files to
// the rules: in a service made from it, the files are the service's, and
// may use its name in ways the rules rightly leave alone.
func onlyInTheTemplate(t *testing.T) {
	t.Helper()
	m, err := readModule(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if m != theTemplate {
		// plain skip: not the template repository but a service made from it.
		t.Skipf("module %s is not the template (%s): nothing of the template's to check", m, theTemplate)
	}
}

// originHit finds the origin's module path or name in any case.
func originHit() *regexp.Regexp {
	return regexp.MustCompile(`(?i)` + regexp.QuoteMeta(Origin.Module) + `|` + regexp.QuoteMeta(Origin.Name))
}

// Planned on this very tree, a rename leaves no trace of the origin's
// module path or name in any file, leaves the kept text alone, and gives
// every module its new path. Files other branches add are covered as long
// as they name the origin the ways the rules know; this test says which
// file when they do not.
func TestThisTreeRenamedLeavesNoHit(t *testing.T) {
	onlyInTheTemplate(t)
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(repoRoot, localComposeFile)); err != nil {
		t.Fatalf("not at the repository root: %v", err)
	}
	o := quokka
	o.Registry = "registry.example.com:5000/qa"
	p, err := Make(ctx, repoRoot, o)
	if err != nil {
		t.Fatal(err)
	}
	files, err := trackedFiles(ctx, repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	hitRE := originHit()
	keptBefore, keptAfter := map[string]int{}, map[string]int{}
	modules := 0
	for _, f := range files {
		before, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(f)))
		if err != nil || path.Base(f) == "go.sum" || isBinary(before) {
			continue
		}
		after, changed := p.Content(f)
		if !changed {
			after = before
		}
		for i, line := range strings.Split(string(after), "\n") {
			if hitRE.MatchString(line) {
				t.Errorf("%s:%d still names the origin: %s", f, i+1, strings.TrimSpace(line))
			}
		}
		for _, k := range kept {
			keptBefore[k.Text] += strings.Count(string(before), k.Text)
			keptAfter[k.Text] += strings.Count(string(after), k.Text)
		}
		if path.Base(f) == "go.mod" {
			modules++
			mf, err := modfile.ParseLax(f, after, nil)
			if err != nil {
				t.Errorf("%s: %v", f, err)
			} else if m := mf.Module.Mod.Path; m != o.Module && !strings.HasPrefix(m, o.Module+"/") {
				t.Errorf("%s: module %s, want %s or below", f, m, o.Module)
			}
		}
	}
	if modules < 3 {
		t.Errorf("%d go.mod files, want the service's and the tools' (3)", modules)
	}
	for _, k := range kept {
		if keptBefore[k.Text] != keptAfter[k.Text] {
			t.Errorf("kept text %q: %d occurrences before, %d after", k.Text, keptBefore[k.Text], keptAfter[k.Text])
		}
	}
	for _, e := range exceptions {
		for _, edit := range p.Edits {
			if strings.HasPrefix(edit.File, e.Dir) && edit.Kind == e.Kind && strings.HasPrefix(edit.New, "registry.example.com:5000/") {
				t.Errorf("%s: %s -> %s, but under %s the registry is not ours (%s)", edit.File, edit.Old, edit.New, e.Dir, e.Why)
			}
		}
	}
	for _, kind := range kindOrder {
		if !containsKind(p.Edits, kind) {
			t.Errorf("no %s edit in the plan", kind)
		}
	}
}

func containsKind(edits []Edit, k Kind) bool {
	for _, e := range edits {
		if e.Kind == k {
			return true
		}
	}
	return false
}
