package template

import (
	"context"
	"fmt"
	"go/format"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"golang.org/x/mod/modfile"

	"github.com/fractionate/service-template/magefiles/lint"
)

// Options are template:init's arguments.
type Options struct {
	Module string // the new module path
	Name   string // the new service name; DefaultName(Module) when empty
	// Registry is where the environments pull the image from, a registry
	// host and optional path (ghcr.io/acme): the image is Registry/Name.
	// Empty keeps a registry set before; the template's own becomes
	// ghcr.io/<owner> for a github.com module path, else a marked
	// placeholder.
	Registry string
	// Endpoints sets environments' endpoints by environment name
	// (-staginghost, -productionhost). An endpoint not set here keeps its
	// value, unless it is an example one: that becomes a marked placeholder.
	Endpoints map[string]string
	// Ask, when set, asks for a value no flag gave, offering def: the
	// target sets it only when standard input is a terminal.
	Ask func(question, def string) (string, error)
}

// Edit is what one rule changes in one file.
type Edit struct {
	File     string // slash path from the repository root
	Kind     Kind
	Old, New string
	Count    int
}

// Setting is one deploy value template:init decides, and why.
type Setting struct {
	What     string // "image repository", "staging endpoint"
	Old, New string
	Source   string // "-registry", "placeholder", "kept", ...
}

// Plan is what template:init will change.
type Plan struct {
	From     []Identity // renamed: the tree's current identity, and the origin when it differs
	To       Identity
	Settings []Setting
	Edits    []Edit
	Warnings []string

	contents map[string][]byte // new contents by file
}

// Files lists the files the plan changes, sorted.
func (p *Plan) Files() []string { return slices.Sorted(maps.Keys(p.contents)) }

// Content returns a file's new content, and whether the plan changes it.
func (p *Plan) Content(file string) ([]byte, bool) {
	c, ok := p.contents[file]
	return c, ok
}

// Make plans template:init in the repository at root. It reads only.
func Make(ctx context.Context, root string, o Options) (*Plan, error) {
	if err := CheckModule(o.Module); err != nil {
		return nil, err
	}
	to := Identity{Module: o.Module, Name: o.Name}
	if to.Name == "" {
		to.Name = DefaultName(o.Module)
	}
	curModule, err := readModule(root)
	if err != nil {
		return nil, err
	}
	curName, err := readName(root)
	if err != nil {
		return nil, err
	}
	current := Identity{Module: curModule, Name: curName}
	envs, err := readEnvironments(root)
	if err != nil {
		return nil, err
	}
	shape, err := readStackShape(root, envs)
	if err != nil {
		return nil, err
	}
	if err := CheckName(to.Name, NameLimits(stackSuffix(envs, current.Name), shape.longestService, shape.longestSecret)); err != nil {
		if o.Name == "" {
			err = fmt.Errorf("%w; the name comes from the module path's last element: give one with -name", err)
		}
		return nil, err
	}
	if o.Registry != "" {
		if err := CheckRegistry(o.Registry, to.Name); err != nil {
			return nil, err
		}
	}
	for env, ep := range o.Endpoints {
		if err := CheckEndpoint("-"+env+"host", ep); err != nil {
			return nil, err
		}
	}

	p := &Plan{To: to, contents: map[string][]byte{}}
	p.From = []Identity{current}
	if Origin != current {
		p.From = append(p.From, Origin)
	}
	images, err := p.decideImages(envs, current, o)
	if err != nil {
		return nil, err
	}
	endpoints, err := p.decideEndpoints(envs, o)
	if err != nil {
		return nil, err
	}

	reps, protected := identityRules(p.From, to)
	for _, im := range images {
		r, prot := imageRules(im.Old, im.New)
		reps, protected = append(reps, r...), append(protected, prot...)
	}
	for _, e := range endpoints {
		protected = append(protected, replacement{kind: KindEndpoint, old: e.new, new: e.new, bound: exactBound, in: filesOnly(environmentsFile)})
	}
	for _, k := range kept {
		protected = append(protected, replacement{old: k.Text, new: k.Text, bound: exactBound})
	}
	rw, err := newRewriter(withTitleCase(reps), withTitleCase(protected))
	if err != nil {
		return nil, err
	}
	probe, err := collisionProbe(reps, p.From, to)
	if err != nil {
		return nil, err
	}

	files, err := trackedFiles(ctx, root)
	if err != nil {
		return nil, err
	}
	var collisions []string // files where the new name already means something else
	for _, f := range files {
		if path.Base(f) == "go.sum" {
			continue // checksums of dependencies: never this module, never edited by hand
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree; Uncommitted reports it
			}
			return nil, err
		}
		if isBinary(data) {
			continue
		}
		text := string(data)
		counts := map[hit]int{}
		if f == environmentsFile {
			if text, err = setEndpoints(text, endpoints, counts); err != nil {
				return nil, err
			}
		}
		text, more := rw.rewrite(f, text)
		for h, n := range more {
			counts[h] += n
		}
		if probe != nil {
			_, found := probe.rewrite(f, string(data))
			for h, n := range found {
				if h.kind == kindProbe {
					collisions = append(collisions, fmt.Sprintf("%s (%d)", f, n))
				}
			}
		}
		if text == string(data) {
			continue
		}
		out, err := finish(f, data, []byte(text))
		if err != nil {
			return nil, err
		}
		p.contents[f] = out
		for h, n := range counts {
			p.Edits = append(p.Edits, Edit{File: f, Kind: h.kind, Old: h.old, New: h.new, Count: n})
		}
	}
	slices.SortFunc(p.Edits, func(a, b Edit) int {
		return cmpEdits(a, b)
	})
	if len(collisions) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%q already appears in %d file(s) meaning something else (%s): left alone now, but renaming this service again later would change those too",
			to.Name, len(collisions), strings.Join(firstN(collisions, 3), ", ")))
	}
	for _, mod := range []string{lint.ToolsModfile, lint.ActionlintModfile} {
		if _, err := os.Stat(filepath.Join(root, mod)); os.IsNotExist(err) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s is missing, so lint cannot run the tool it pins: a module copy (gonew, go mod download) leaves out nested modules; copy %s from the template's repository", mod, path.Dir(mod)+"/"))
		}
	}
	return p, nil
}

func cmpEdits(a, b Edit) int {
	if c := strings.Compare(a.File, b.File); c != 0 {
		return c
	}
	if c := slices.Index(kindOrder, a.Kind) - slices.Index(kindOrder, b.Kind); c != 0 {
		return c
	}
	return strings.Compare(a.Old, b.Old)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "...")
	}
	return s
}

// stackSuffix is the longest addition an environment's stack name makes
// to the service's name (len("-staging")).
func stackSuffix(envs []environment, name string) int {
	longest := 0
	for _, e := range envs {
		if strings.Contains(e.Stack, name) {
			longest = max(longest, len(e.Stack)-len(name))
		}
	}
	return longest
}

// identityRules rename each identity in from to to, and protect to.
func identityRules(from []Identity, to Identity) (reps, protected []replacement) {
	for _, id := range from {
		name := replacement{kind: KindName, old: id.Name, new: to.Name, bound: nameBound}
		if owner := path.Dir(id.Module); owner != "." {
			name.notAfter = []string{path.Base(owner) + "/"}
		}
		reps = append(reps,
			replacement{kind: KindModule, old: id.Module, new: to.Module, bound: moduleBound},
			// A repository's clone URL: https://<module path>.git.
			replacement{kind: KindModule, old: id.Module + ".git", new: to.Module + ".git", bound: moduleBound},
			name)
	}
	protected = []replacement{
		{kind: KindModule, old: to.Module, new: to.Module, bound: moduleBound},
		{kind: KindModule, old: to.Module + ".git", new: to.Module + ".git", bound: moduleBound},
		{kind: KindName, old: to.Name, new: to.Name, bound: nameBound},
	}
	return dropNoops(reps), protected
}

// imageRules rename an image repository: whole (registry/owner/name), its
// owner/name part alone, and the production stack file's default
// ${REGISTRY:-host}/${IMAGE_NAME:-owner/name}.
func imageRules(oldImage, newImage string) (reps, protected []replacement) {
	o, err1 := reference.ParseNamed(oldImage)
	n, err2 := reference.ParseNamed(newImage)
	if err1 != nil || err2 != nil {
		return nil, nil // decideImages only hands over valid ones
	}
	compose := func(r reference.Named) string {
		return "${REGISTRY:-" + reference.Domain(r) + "}/${IMAGE_NAME:-" + reference.Path(r) + "}"
	}
	reps = []replacement{
		{kind: KindImage, old: oldImage, new: newImage, bound: imageBound, in: outside(KindImage)},
		{kind: KindImage, old: compose(o), new: compose(n), bound: exactBound},
	}
	protected = []replacement{
		{kind: KindImage, old: newImage, new: newImage, bound: imageBound},
		{kind: KindImage, old: compose(n), new: compose(n), bound: exactBound},
	}
	// The owner/name part alone: only when it is more than the name, which
	// the name rule already covers.
	if strings.Contains(reference.Path(o), "/") {
		reps = append(reps, replacement{kind: KindImage, old: reference.Path(o), new: reference.Path(n), bound: imagePathBound})
		protected = append(protected, replacement{kind: KindImage, old: reference.Path(n), new: reference.Path(n), bound: imagePathBound})
	}
	return dropNoops(reps), protected
}

func dropNoops(rs []replacement) []replacement {
	return slices.DeleteFunc(rs, func(r replacement) bool { return r.old == r.new })
}

// kindProbe marks a rule that only counts: the new name found where it
// does not stand for this service.
const kindProbe Kind = "probe"

// collisionProbe finds the new name where it already means something else
// (a word the code uses, say): this run changes nothing there, but a later
// rename from the new name could not tell those apart. Nil when the name
// does not change.
func collisionProbe(reps []replacement, from []Identity, to Identity) (*rewriter, error) {
	if slices.ContainsFunc(from, func(id Identity) bool { return id.Name == to.Name }) {
		return nil, nil
	}
	probes := []replacement{{kind: kindProbe, old: to.Name, new: to.Name, bound: nameBound}}
	var protected []replacement
	for _, k := range kept {
		protected = append(protected, replacement{old: k.Text, new: k.Text, bound: exactBound})
	}
	return newRewriter(append(slices.Clone(reps), probes...), protected)
}

// finish checks and tidies a rewritten file: Go source is gofmt'ed again
// when it was before (a renamed import may sort differently), and a go.mod
// must still parse.
func finish(file string, before, after []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(file, ".go"):
		if formatted, err := format.Source(before); err == nil && string(formatted) == string(before) {
			out, err := format.Source(after)
			if err != nil {
				return nil, fmt.Errorf("%s: renamed source does not parse: %w", file, err)
			}
			return out, nil
		}
	case path.Base(file) == "go.mod":
		if _, err := modfile.ParseLax(file, after, nil); err != nil {
			return nil, fmt.Errorf("%s: renamed go.mod does not parse: %w", file, err)
		}
	}
	return after, nil
}

// imageChange is one image repository and what it becomes.
type imageChange struct{ Old, New string }

// defaultRegistry is where a service's image goes unless -registry says
// otherwise: GitHub's registry under the module's owner when the module
// is on github.com (what the CI workflow pushes to), else a placeholder.
func defaultRegistry(modulePath string) string {
	if rest, ok := strings.CutPrefix(modulePath, "github.com/"); ok {
		if owner, _, ok := strings.Cut(rest, "/"); ok {
			return "ghcr.io/" + strings.ToLower(owner)
		}
	}
	return placeholderRegistry
}

// placeholderRegistry stands for a registry nobody has chosen yet.
const placeholderRegistry = "ghcr.io/change-me"

// decideImages works out each environment's image repository: the ones of
// environments pulling from a registry elsewhere (not one of their own on
// this machine, which the name rule renames) and named after the service.
func (p *Plan) decideImages(envs []environment, current Identity, o Options) ([]imageChange, error) {
	var images []string
	users := map[string][]string{} // image -> environments
	for _, e := range envs {
		if e.Local {
			continue
		}
		if users[e.Image] == nil {
			images = append(images, e.Image)
		}
		users[e.Image] = append(users[e.Image], e.Name)
	}
	var changes []imageChange
	for _, image := range images {
		var base string
		for _, id := range p.From {
			if b, ok := strings.CutSuffix(image, "/"+id.Name); ok {
				base = b
			}
		}
		if base == "" {
			if o.Registry != "" {
				p.Warnings = append(p.Warnings, fmt.Sprintf("-registry: %s's image %s is not named after the service; left as it is", strings.Join(users[image], ", "), image))
			}
			continue // named otherwise: the user's choice
		}
		newBase, source := base, "kept"
		switch {
		case o.Registry != "":
			newBase, source = o.Registry, "-registry"
		case base == defaultRegistry(Origin.Module) || base == defaultRegistry(current.Module) || strings.Contains(base, "change-me"):
			newBase, source = defaultRegistry(p.To.Module), "from the module path"
			if newBase == placeholderRegistry {
				source = "placeholder: set -registry=REGISTRY/OWNER"
			}
			if o.Ask != nil {
				answer, err := ask(o.Ask, "image registry and owner, like ghcr.io/acme", newBase, func(v string) error { return CheckRegistry(v, p.To.Name) })
				if err != nil {
					return nil, err
				}
				if answer != newBase {
					newBase, source = answer, "asked"
				}
			}
		}
		newImage := newBase + "/" + p.To.Name
		p.Settings = append(p.Settings, Setting{What: "image repository (" + strings.Join(users[image], ", ") + ")", Old: image, New: newImage, Source: source})
		changes = append(changes, imageChange{Old: image, New: newImage})
	}
	return changes, nil
}

// ask asks until the answer passes check, saying what was wrong with the
// last one; an empty answer takes def.
func ask(a func(q, def string) (string, error), question, def string, check func(string) error) (string, error) {
	q := question
	for {
		v, err := a(q, def)
		if err != nil {
			return "", fmt.Errorf("%s: %w", question, err)
		}
		v = strings.TrimSpace(v)
		if v == "" {
			return def, nil
		}
		if err := check(v); err != nil {
			q = err.Error() + "; " + question
			continue
		}
		return v, nil
	}
}

// endpointChange is one environment's endpoint and what it becomes.
type endpointChange struct {
	env      string
	old, new string
	line     int // of the endpoint: value in environments.yml
}

// placeholderEndpoint is what an environment's endpoint is until someone
// names the real manager: marked, and on a domain that never resolves.
func placeholderEndpoint(env string) string { return "ssh://deploy@CHANGE-ME." + env + ".example" }

// isExampleEndpoint reports an endpoint on a domain reserved for examples
// (RFC 2606) or one already marked: nobody deploys there.
func isExampleEndpoint(ep string) bool {
	if strings.Contains(ep, "CHANGE-ME") {
		return true
	}
	u, err := url.Parse(ep)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, d := range []string{"example.com", "example.net", "example.org", "example", "invalid", "test"} {
		if h == d || strings.HasSuffix(h, "."+d) {
			return true
		}
	}
	return false
}

// decideEndpoints works out each environment's endpoint.
func (p *Plan) decideEndpoints(envs []environment, o Options) ([]endpointChange, error) {
	byName := map[string]environment{}
	for _, e := range envs {
		byName[e.Name] = e
	}
	for env := range o.Endpoints {
		if e, ok := byName[env]; !ok || e.Endpoint == nil {
			return nil, fmt.Errorf("-%shost: %s has no environment %s with an endpoint: to set", env, environmentsFile, env)
		}
	}
	var changes []endpointChange
	for _, e := range envs {
		if e.Endpoint == nil {
			continue
		}
		old := e.Endpoint.Value
		newEP, source := old, "kept"
		switch {
		case o.Endpoints[e.Name] != "":
			newEP, source = o.Endpoints[e.Name], "-"+e.Name+"host"
		case isExampleEndpoint(old):
			newEP, source = placeholderEndpoint(e.Name), "placeholder: set -"+e.Name+"host=ssh://user@host"
			if o.Ask != nil {
				answer, err := ask(o.Ask, e.Name+"'s Swarm manager, like ssh://deploy@host", newEP, func(v string) error { return CheckEndpoint(e.Name+" endpoint", v) })
				if err != nil {
					return nil, err
				}
				if answer != newEP {
					newEP, source = answer, "asked"
				}
			}
		}
		p.Settings = append(p.Settings, Setting{What: e.Name + " endpoint", Old: old, New: newEP, Source: source})
		changes = append(changes, endpointChange{env: e.Name, old: old, new: newEP, line: e.Endpoint.Line})
	}
	return changes, nil
}

// setEndpoints replaces each endpoint's value on its own line, so that two
// environments sharing a manager can be pointed apart.
func setEndpoints(text string, changes []endpointChange, counts map[hit]int) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	for _, c := range changes {
		if c.old == c.new {
			continue
		}
		i := c.line - 1
		if i < 0 || i >= len(lines) || !strings.Contains(lines[i], c.old) {
			return "", fmt.Errorf("%s:%d: cannot find %s's endpoint %q", environmentsFile, c.line, c.env, c.old)
		}
		lines[i] = strings.Replace(lines[i], c.old, c.new, 1)
		counts[hit{KindEndpoint, c.old, c.new}]++
	}
	return strings.Join(lines, ""), nil
}
