package template

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Kind is what an occurrence stands for.
type Kind string

// The kinds of occurrence template:init rewrites.
const (
	KindModule   Kind = "module path"      // go.mod, imports, ldflags -X, the image's source URL
	KindName     Kind = "service name"     // compose project, stacks, labels, lock paths, titles
	KindImage    Kind = "image repository" // where the environments pull the app from
	KindEndpoint Kind = "endpoint"         // the Swarm manager an environment deploys to
)

// kindOrder is the order kinds are reported in.
var kindOrder = []Kind{KindModule, KindName, KindImage, KindEndpoint}

// A boundary says which bytes may not stand right before or after an
// occurrence: an occurrence glued to more of the same alphabet is part of
// something longer (the name with an "s", a module path with "-client")
// and names something else.
type boundary struct{ before, after string }

var (
	// Module paths are made of letters, digits and ._~- between slashes;
	// a following '/' starts a package path inside the module.
	moduleBound = boundary{before: "._~-", after: "._~-"}
	// Image repositories: a ':' or '@' after one starts a tag or digest.
	imageBound = boundary{before: "._-/", after: "._-/"}
	// An image's owner/name part may follow a registry and its '/'.
	imagePathBound = boundary{before: "._-", after: "._-/"}
	// Names may be followed by '-': stacks are <name>-staging, lock files
	// <name>-docker-tests.lock. A preceding '-' makes another name.
	nameBound = boundary{before: "_-", after: "_"}
	// Endpoints are replaced as whole values of environments.yml.
	exactBound = boundary{}
)

func (b boundary) isWord(c byte, extra string) bool {
	return c < unicode.MaxASCII && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))) || strings.IndexByte(extra, c) >= 0
}

func (b boundary) fits(text string, at, n int) bool {
	if b == exactBound {
		return true
	}
	if at > 0 && b.isWord(text[at-1], b.before) {
		return false
	}
	end := at + n
	return end >= len(text) || !b.isWord(text[end], b.after)
}

// replacement is one rule: old becomes new, in the files in scope.
type replacement struct {
	kind     Kind
	old, new string
	bound    boundary
	// notAfter: old does not match right after any of these. A name
	// after its owner's path ("fractionate/" of github.com/fractionate/...)
	// is part of another module or image path (a -client module, say).
	notAfter []string
	// in reports whether the rule applies to a file (slash path from the
	// repository root); nil means every file.
	in func(file string) bool
}

func (r replacement) applies(file string) bool { return r.in == nil || r.in(file) }

func (r replacement) follows(before string) bool {
	for _, p := range r.notAfter {
		if strings.HasSuffix(before, p) {
			return true
		}
	}
	return false
}

// exception is a decision that an occurrence of some kind, in some files,
// means something else than it does everywhere else.
type exception struct {
	Dir  string // files under this directory (slash path, ending in '/')
	Kind Kind
	// What is renamed there instead, and why.
	Why string
}

// exceptions are the places where a full image repository of this service
// is not this service's registry. They are data so that tests (and a
// reader) can see every such decision in one place.
var exceptions = []exception{
	{
		Dir: "magefiles/dockerimage/", Kind: KindImage,
		Why: "there the registry part is dockerimage.DefaultRegistry, ImageName's fallback when REGISTRY is unset, not this service's registry: only the owner/name part is renamed",
	},
}

func outside(kind Kind) func(string) bool {
	return func(file string) bool {
		for _, e := range exceptions {
			if e.Kind == kind && strings.HasPrefix(file, e.Dir) {
				return false
			}
		}
		return true
	}
}

// Kept is text that contains part of the origin's identity but names
// something other than this service; no rule touches it.
type Kept struct {
	Text string
	Why  string
}

// kept lists those decisions. (Hits of the origin's owner alone, not of its
// module path or name, are the only ones there are.)
var kept = []Kept{
	{
		Text: "org.fractionate.deploy.",
		Why:  "the label namespace the deploy tooling puts on Swarm objects (records, locks, secret versions): it names the tooling every service made from this template shares, not the service, and records already on a Swarm are found by it",
	},
	{
		Text: "fractionate/neon",
		Why:  "test data for reading GitHub remotes (magefiles/dockerimage): an unrelated repository",
	},
	{
		Text: "Fractionate/Neon",
		Why:  "the same test data, in the mixed case the tests lower-case",
	},
}

// filesOnly limits a rule to the named files.
func filesOnly(files ...string) func(string) bool {
	return func(file string) bool { return slices.Contains(files, file) }
}

// titleCase upper-cases the first letter of each element of s ('/', '-'
// and '.' separate elements): the mixed-case spelling GitHub shows
// (Fractionate/Service-Template), which tests of lower-casing use.
func titleCase(s string) string {
	b := []byte(s)
	for i := range b {
		if (i == 0 || strings.IndexByte("/-.", b[i-1]) >= 0) && 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// withTitleCase adds the title-case twin of each rule whose old text has
// one.
func withTitleCase(rs []replacement) []replacement {
	out := slices.Clone(rs)
	for _, r := range rs {
		if t := titleCase(r.old); t != r.old && r.kind != KindEndpoint {
			r.old, r.new = t, titleCase(r.new)
			out = append(out, r)
		}
	}
	return out
}

// rewriter applies replacements to one file's text.
type rewriter struct {
	reps []replacement
	// protected is text that is already what it should be (the new
	// identity, kept text): where it starts, nothing shorter is replaced.
	// That is what makes a second run change nothing even when the new
	// name contains the old one.
	protected []replacement
	first     [256]bool // bytes an old or protected text starts with
}

func newRewriter(reps, protected []replacement) (*rewriter, error) {
	seen := map[string]replacement{}
	for _, r := range reps {
		if p, ok := seen[r.old]; ok && p.new != r.new {
			return nil, fmt.Errorf("conflicting rules: %q would become %q (%s) and %q (%s)", r.old, p.new, p.kind, r.new, r.kind)
		}
		seen[r.old] = r
	}
	w := &rewriter{reps: reps, protected: protected}
	for _, r := range slices.Concat(reps, protected) {
		if r.old != "" {
			w.first[r.old[0]] = true
		}
	}
	return w, nil
}

// hit counts one rule's replacements in a file.
type hit struct {
	kind     Kind
	old, new string
}

// rewrite returns text with every occurrence replaced, and how many times
// each rule applied. At each position the longest matching text wins, old
// or protected; a protected one is copied unchanged.
func (w *rewriter) rewrite(file, text string) (string, map[hit]int) {
	reps := w.inScope(file, w.reps)
	protected := w.inScope(file, w.protected)
	var out strings.Builder
	counts := map[hit]int{}
	for i := 0; i < len(text); {
		if !w.first[text[i]] {
			out.WriteByte(text[i])
			i++
			continue
		}
		best, isOld := replacement{}, false
		for _, r := range protected {
			if len(r.old) > len(best.old) && strings.HasPrefix(text[i:], r.old) && r.bound.fits(text, i, len(r.old)) {
				best, isOld = r, false
			}
		}
		for _, r := range reps {
			if len(r.old) > len(best.old) && strings.HasPrefix(text[i:], r.old) && r.bound.fits(text, i, len(r.old)) && !r.follows(text[:i]) {
				best, isOld = r, true
			}
		}
		switch {
		case best.old == "":
			out.WriteByte(text[i])
			i++
		case isOld:
			out.WriteString(best.new)
			counts[hit{best.kind, best.old, best.new}]++
			i += len(best.old)
		default:
			out.WriteString(best.old)
			i += len(best.old)
		}
	}
	return out.String(), counts
}

func (w *rewriter) inScope(file string, rs []replacement) []replacement {
	var out []replacement
	for _, r := range rs {
		if r.applies(file) {
			out = append(out, r)
		}
	}
	return out
}
