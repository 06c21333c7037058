package deploy

// deploy:setup: what an environment with an endpoint needs before its
// first deploy, checked and made in one idempotent run. The counterpart of
// deploy:init, which makes this machine's engine a Swarm; setup never makes
// a Swarm (the endpoint's host is its operators'), it checks one:
//
//  1. the stack files load and convert as a deploy converts them;
//  2. the endpoint answers and is a manager; its nodes, and which of them
//     each service's placement lets it run on;
//  3. the environment's image resolves in its registry with the pull
//     credentials, from this machine and through the manager (the engine's
//     distribution endpoint, with the X-Registry-Auth Swarm is given);
//  4. under the deploy lock, version 1 of each logical secret that has none
//     (generated where init_secrets says so, else read without echo) and
//     each external network the stack files name (overlay, attachable);
//  5. the environment secrets the CI workflow reads, by name.
//
// A step that finds something wrong stops it before anything is made; a
// second run makes nothing and says ok on every line.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// DefaultWorkflow is the CI workflow whose environment secrets deploy:setup
// lists, relative to the repository root.
const DefaultWorkflow = ".github/workflows/ci.yml"

// SetupOptions tune Session.Setup.
type SetupOptions struct {
	DryRun bool // say what it would do; read no value, make nothing
	// Secret names the one secret whose value the input holds: the way to
	// give a value from a pipe, one secret per run. On a terminal without
	// it, every missing value is asked for in turn.
	Secret string
	// Image is the reference whose pull is checked (in the environment's
	// repository); HEAD's image when empty.
	Image string
	Input SecretInput
	// Workflow is the CI workflow file whose environment secrets are
	// listed; none are when empty.
	Workflow string
}

// SecretInput is where secret values come from.
type SecretInput struct {
	Terminal bool // values are asked for, one prompt each, without echo
	// Read reads the value of the named secret: from a prompt on a
	// terminal, else all of the input (one value).
	Read func(name string) (secret.Value, error)
}

// StdinSecrets reads values from in: on a terminal, from a prompt without
// echo written to prompt; else all of in is one value.
func StdinSecrets(in *os.File, prompt io.Writer) SecretInput {
	return SecretInput{
		Terminal: term.IsTerminal(int(in.Fd())),
		Read:     func(name string) (secret.Value, error) { return ReadSecret(in, prompt, name) },
	}
}

// distributionAPI asks the engine to resolve an image at its registry, as
// it does before it pulls: the engine's own network, DNS, TLS trust and
// insecure-registries, with the credentials given.
type distributionAPI interface {
	DistributionInspect(ctx context.Context, imageRef string, options client.DistributionInspectOptions) (client.DistributionInspectResult, error)
}

// steps prints setup's lines, one per step, and counts the failures.
type steps struct {
	w      io.Writer
	failed []string
}

func (p *steps) line(status, step, msg string) {
	fmt.Fprintf(p.w, "  %-5s  %-9s  %s\n", status, step, strings.ReplaceAll(msg, "\n", "\n"+strings.Repeat(" ", 20)))
}

func (p *steps) ok(step, msg string)    { p.line("ok", step, msg) }
func (p *steps) skip(step, why string)  { p.line("skip", step, why) }
func (p *steps) warn(step, msg string)  { p.line("warn", step, msg) }
func (p *steps) would(step, msg string) { p.line("would", step, msg) }

func (p *steps) fail(step string, err error) {
	p.failed = append(p.failed, step)
	p.line("FAIL", step, err.Error())
}

// check prints a preflight check as a step.
func (p *steps) check(c Check) {
	switch {
	case c.Err != nil:
		p.fail(c.Name, c.Err)
	case c.Skipped != "":
		p.skip(c.Name, c.Skipped)
	default:
		p.ok(c.Name, c.OK)
	}
}

// Setup prepares the environment's Swarm for its first deploy (see the top
// of this file). The error carries exit code 1 when a step failed.
func (s *Session) Setup(ctx context.Context, o SetupOptions) error {
	start := time.Now()
	if s.Endpoint.Local() {
		return Refused(fmt.Errorf("deploy:setup prepares an environment with an endpoint; %s has none, so it is this machine's engine: go tool mage deploy:init %s prepares it (or give it an endpoint: in %s, or set DEPLOY_HOST)",
			s.Env.Name, s.Env.Name, envfile.DefaultPath))
	}
	mode := "makes what is missing"
	if o.DryRun {
		mode = "dry run: nothing will be changed"
	}
	fmt.Fprintf(s.Out, "Setup of %s (stack %s) through %s [%s]\n", s.Env.Name, s.Env.Stack, s.Endpoint, mode)
	p := &steps{w: s.Out}

	st, desired := s.setupStack(ctx, p)
	var cs Checks
	_, manager := s.checkManager(ctx, &cs)
	for _, c := range cs {
		if c.Name == "swarm" && c.Err != nil && strings.Contains(c.Err.Error(), "is not a Swarm manager") {
			c.Err = fmt.Errorf("%w; deploy:setup needs a manager: make the endpoint's engine one on its host (docker swarm init, or docker swarm join as a manager), or point endpoint: of %s (or DEPLOY_HOST) at a manager", c.Err, s.Env.Name)
		}
		p.check(c)
	}
	if !manager {
		for _, step := range []string{"nodes", "pull", "secrets", "networks"} {
			p.skip(step, "needs the endpoint to answer as a manager")
		}
		s.printCISecrets(p, o.Workflow)
		return setupRefusal(s.Env.Name, p, nil)
	}
	s.setupNodes(ctx, p, desired)
	s.setupPull(ctx, p, o.Image)
	if st == nil {
		p.skip("secrets", "needs the stack files")
		s.printCISecrets(p, o.Workflow)
		return setupRefusal(s.Env.Name, p, nil)
	}

	// What is missing, and the values of the secrets to make, before the
	// lock: nobody types a value while a deploy waits.
	logical, err := logicalSecrets(s.Env, s.Lookup)
	if err != nil {
		p.fail("secrets", err)
		s.printCISecrets(p, o.Workflow)
		return setupRefusal(s.Env.Name, p, nil)
	}
	want := setupWants{logical: logical, explicit: explicitSecrets(st), networks: desired.ExternalNetworks}
	items, err := s.planSetup(ctx, want, o, nil)
	if err != nil {
		p.fail("secrets", err)
		s.printCISecrets(p, o.Workflow)
		return setupRefusal(s.Env.Name, p, nil)
	}
	blocked := len(p.failed) > 0 || slices.ContainsFunc(items, func(it *setupItem) bool { return it.state == itemFailed })
	values := map[string]secret.Value{}
	if !o.DryRun && !blocked {
		for _, it := range items {
			if it.state == itemCreate && it.read {
				v, err := o.Input.Read(it.name)
				if err != nil {
					it.state, it.err, blocked = itemFailed, err, true
					continue
				}
				values[it.name] = v
			}
		}
	}

	toMake := slices.ContainsFunc(items, func(it *setupItem) bool { return it.state == itemCreate })
	var made []string
	switch {
	case blocked || o.DryRun:
		if o.DryRun && toMake && !blocked {
			s.setupDryLock(ctx, p)
		}
		for _, it := range items {
			it.print(p, o.DryRun && !blocked)
		}
	case !toMake:
		p.ok("lock", "not taken: nothing to make")
		for _, it := range items {
			it.print(p, false)
		}
	default:
		made = s.applySetup(ctx, p, items, want, o, values)
	}
	s.printCISecrets(p, o.Workflow)
	if len(p.failed) > 0 {
		return setupRefusal(s.Env.Name, p, made)
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	switch {
	case o.DryRun:
		fmt.Fprintln(s.Out, "Dry run: nothing was changed.")
	case len(made) == 0:
		fmt.Fprintf(s.Out, "Setup of %s: everything a deploy needs is in place; nothing made (%s). Next: go tool mage deploy:to %s\n", s.Env.Name, took, s.Env.Name)
	default:
		fmt.Fprintf(s.Out, "Setup of %s: made %s (%s). Next: go tool mage deploy:to %s\n", s.Env.Name, strings.Join(made, ", "), took, s.Env.Name)
	}
	return nil
}

// setupRefusal is the short error a setup with failed steps ends with.
func setupRefusal(env string, p *steps, made []string) error {
	what := "nothing was made"
	if len(made) > 0 {
		what = "made " + strings.Join(made, ", ")
	}
	return Refused(fmt.Errorf("deploy:setup of %s: %d step(s) failed (%s); %s: fix what the FAIL lines say and run it again", env, len(p.failed), strings.Join(slices.Compact(slices.Clone(p.failed)), ", "), what))
}

// setupStack loads and converts the stack files as a deploy does, with a
// stand-in release and stand-ins for the secrets not made yet.
func (s *Session) setupStack(ctx context.Context, p *steps) (*Stack, *Desired) {
	st, err := loadStack(s.Env, Release{Repository: s.Env.Image, Tag: "v0.0.0"}, s.Lookup)
	if err != nil {
		p.fail("stack", err)
		return nil, nil
	}
	for _, w := range st.Warnings {
		p.warn("stack", w)
	}
	d, err := st.Convert(ctx, standIns{})
	if err != nil {
		p.fail("stack", fmt.Errorf("convert the stack files: %w", err))
		return nil, nil
	}
	nets := "no external network"
	if len(d.ExternalNetworks) > 0 {
		nets = "external network(s) " + strings.Join(d.ExternalNetworks, ", ")
	}
	p.ok("stack", fmt.Sprintf("%d file(s) load: service(s) %s; %s", len(s.Env.Files), strings.Join(slices.Sorted(maps.Keys(d.Services)), ", "), nets))
	return st, d
}

// standIns answers the converter's lookups of secrets and configs with an
// object of each name asked for: setup needs placement and networks from
// the conversion, not the IDs of objects it may be about to make.
type standIns struct{}

func (standIns) SecretList(_ context.Context, o client.SecretListOptions) (client.SecretListResult, error) {
	var out []swarm.Secret
	for name := range o.Filters["name"] {
		out = append(out, swarm.Secret{ID: "stand-in", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: name}}})
	}
	return client.SecretListResult{Items: out}, nil
}

func (standIns) ConfigList(_ context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	var out []swarm.Config
	for name := range o.Filters["name"] {
		out = append(out, swarm.Config{ID: "stand-in", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name}}})
	}
	return client.ConfigListResult{Items: out}, nil
}

// explicitSecrets are the external secrets the stack files name
// explicitly (secrets.x.name): they must exist under that name.
func explicitSecrets(st *Stack) []string {
	var out []string
	for k, sc := range st.Config.Secrets {
		if sc.External.External && sc.Name != k {
			out = append(out, sc.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// nodeList answers NodeList with nodes read once.
type nodeList []swarm.Node

func (n nodeList) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	return client.NodeListResult{Items: n}, nil
}

// setupNodes prints every node, then, per service, the nodes its
// placement lets it run on, failing a service no ready node can run.
func (s *Session) setupNodes(ctx context.Context, p *steps, d *Desired) {
	ns, err := s.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		p.fail("nodes", fmt.Errorf("list nodes: %w", err))
		return
	}
	nodes := slices.Clone(ns.Items)
	slices.SortFunc(nodes, func(a, b swarm.Node) int {
		if a.Spec.Role != b.Spec.Role {
			return strings.Compare(string(a.Spec.Role), string(b.Spec.Role)) // manager before worker
		}
		return strings.Compare(a.Description.Hostname, b.Description.Hostname)
	})
	for _, n := range nodes {
		role := string(n.Spec.Role)
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			role += " (leader)"
		}
		labels := "none"
		if len(n.Spec.Labels) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(n.Spec.Labels)) {
				kv = append(kv, k+"="+n.Spec.Labels[k])
			}
			labels = strings.Join(kv, ", ")
		}
		msg := fmt.Sprintf("%s: %s, %s, %s, %s; labels: %s", n.Description.Hostname, role, n.Spec.Availability, n.Status.State, cmpOr(n.Status.Addr, "no address"), labels)
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			p.ok("node", msg)
		} else {
			p.warn("node", msg+": runs no new task")
		}
	}
	if d == nil {
		p.skip("placement", "needs the stack files")
		return
	}
	for _, name := range slices.Sorted(maps.Keys(d.Services)) {
		spec := d.Services[name]
		var one Checks
		checkNodes(ctx, nodeList(nodes), map[string]swarm.ServiceSpec{name: spec}, &one)
		if one[0].Err != nil {
			p.fail("placement", one[0].Err)
			continue
		}
		needs := "no constraint"
		if pl := spec.TaskTemplate.Placement; pl != nil && len(pl.Constraints) > 0 {
			needs = strings.Join(pl.Constraints, ", ")
		}
		var on []string
		for _, n := range nodes {
			if converge.Eligible(spec, n) {
				on = append(on, n.Description.Hostname)
			}
		}
		msg := fmt.Sprintf("%s (%s) can run on %s", name, needs, strings.Join(on, ", "))
		if _, w, ok := strings.Cut(one[0].OK, "; warning: "); ok {
			msg += "; warning: " + w
		}
		p.ok("placement", msg)
	}
}

// setupPull checks that the environment's image resolves with the pull
// credentials: from this machine (the registry resolver, credentials
// scoped to the image's registry), then from the manager, through the
// engine's distribution endpoint with the X-Registry-Auth Swarm is given.
// The manager's own network, DNS and registry trust are what its pulls go
// through; Swarm gives every node the same credentials.
func (s *Session) setupPull(ctx context.Context, p *steps, image string) {
	rel := Release{Repository: s.Env.Image}
	from := "-image"
	if image != "" {
		if _, err := parseRelease(s.Env, DeployOptions{Image: image}, &rel); err != nil {
			p.fail("registry", err)
			p.skip("pull", "needs an image to check")
			return
		}
	} else {
		from = "HEAD's image"
		tag, err := "", errors.New("no git facts")
		if s.Head != nil {
			tag, err = s.Head(ctx, false)
		}
		if err != nil {
			p.skip("registry", fmt.Sprintf("HEAD's image tag: %v; give -image=REF to check an image of %s", err, s.Env.Image))
			p.skip("pull", "needs an image to check")
			return
		}
		rel.Tag = tag
	}
	ref := rel.Ref()
	host := registryHost(ref)
	dg, err := s.Registry.Digest(ctx, ref)
	switch {
	case errors.Is(err, errNotInRegistry):
		p.skip("registry", fmt.Sprintf("%s (%s) is not in the registry yet: push it (CI's build job, or go tool mage image:push) and run deploy:setup again, or give -image=REF of an image that is there", ref, from))
		p.skip("pull", "needs an image in the registry")
		return
	case err != nil:
		p.fail("registry", fmt.Errorf("%s (%s): %w: check the pull credentials (REGISTRY_USERNAME and REGISTRY_PASSWORD here; CI passes REGISTRY_PULL_USERNAME and REGISTRY_PULL_TOKEN as them)", ref, from, err))
		p.skip("pull", "needs the registry to answer")
		return
	}
	p.ok("registry", fmt.Sprintf("%s (%s) resolves to %s with the pull credentials (from this machine)", ref, from, shortDigest(dg)))
	auth, err := s.Auth(ctx, ref)
	if err != nil {
		p.fail("pull", fmt.Errorf("the credentials for %s: %w", host, err))
		return
	}
	api, ok := s.API.(distributionAPI)
	if !ok {
		p.skip("pull", "this engine client cannot ask the manager to resolve images")
		return
	}
	r, err := api.DistributionInspect(ctx, ref, client.DistributionInspectOptions{EncodedRegistryAuth: auth})
	if err != nil {
		p.fail("pull", fmt.Errorf("the manager (%s) cannot resolve %s at %s with the credentials Swarm is given: %s; its nodes could not pull it either: check that the nodes reach %s (DNS, firewall; a plain-HTTP registry must be in each engine's insecure-registries) and that the pull credentials may read %s",
			s.Endpoint, ref, host, endpoint.Cause(err), host, s.Env.Image))
		return
	}
	p.ok("pull", fmt.Sprintf("the manager resolves it at %s with the credentials Swarm is given (%s); Swarm gives every node the same", host, shortDigest(string(r.Descriptor.Digest))))
}

// setupDryLock reads the lock for a dry run that would make something: a
// real run would wait for it (DEPLOY_LOCK_WAIT) or stop.
func (s *Session) setupDryLock(ctx context.Context, p *steps) {
	held, err := ledger.Lock{API: s.API, Stack: s.Env.Stack}.Read(ctx)
	switch {
	case err != nil:
		p.fail("lock", err)
	case held != nil:
		p.fail("lock", fmt.Errorf("%s; a real run would wait up to DEPLOY_LOCK_WAIT (%s) for it, then stop", held, s.LockWait))
	default:
		p.ok("lock", "free")
	}
}

// setupWants is what the stack files need made beforehand.
type setupWants struct {
	logical  []string // versioned secrets
	explicit []string // secrets named explicitly
	networks []string // external networks
}

type itemState int

const (
	itemExists  itemState = iota
	itemCreate            // to be made
	itemPending           // missing, and this run has no value for it
	itemFailed            // wrong: nothing is made while one is
)

// setupItem is one secret or network setup makes or finds.
type setupItem struct {
	kind, name string // "secret" or "network"
	state      itemState
	msg        string // what was found, or what to do about a pending one
	how        string // where the value of a secret to make comes from
	read       bool   // its value is read from the input
	generated  bool   // init_secrets makes it
	err        error
}

// print writes the line of an item that was not made by this run.
func (it *setupItem) print(p *steps, dryRun bool) {
	switch it.state {
	case itemExists:
		p.ok(it.kind, it.name+": "+it.msg)
	case itemFailed:
		p.fail(it.kind, fmt.Errorf("%s: %w", it.name, it.err))
	case itemPending:
		p.fail(it.kind, errors.New(it.name+": "+it.msg))
	case itemCreate:
		if dryRun {
			p.would(it.kind, fmt.Sprintf("%s: would be made (%s)", it.name, it.how))
		} else {
			p.skip(it.kind, it.name+": not made: a step failed")
		}
	}
}

// planSetup reads what exists and decides, item by item, what to make.
// values, once read (nil before), are the only values there are: no
// secret is asked for again.
func (s *Session) planSetup(ctx context.Context, want setupWants, o SetupOptions, values map[string]secret.Value) ([]*setupItem, error) {
	all, err := s.API.SecretList(ctx, client.SecretListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	names := map[string]bool{}
	for _, sc := range all.Items {
		names[sc.Spec.Name] = true
	}
	versions := versionsOf(s.Env.Stack, all.Items)
	// The rules deploy:init makes its secrets by, checked without making
	// any: an init secret that embeds another must be made with it.
	initErr := ensureSecrets(ctx, s.API, s.Env, io.Discard, true)

	var items []*setupItem
	if o.Secret != "" {
		switch _, generated := s.Env.InitSecrets[o.Secret]; {
		case !slices.Contains(want.logical, o.Secret):
			items = append(items, &setupItem{kind: "secret", name: o.Secret, state: itemFailed,
				err: fmt.Errorf("-secret: environment %s's stack files declare no external secret %q; they declare: %s", s.Env.Name, o.Secret, strings.Join(want.logical, ", "))})
		case generated:
			items = append(items, &setupItem{kind: "secret", name: o.Secret, state: itemFailed,
				err: fmt.Errorf("-secret: it is generated (init_secrets of %s); to give its value yourself, remove it from init_secrets in %s", s.Env.Name, envfile.DefaultPath)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(setOf(want.logical, slices.Collect(maps.Keys(s.Env.InitSecrets))))) {
		if slices.ContainsFunc(items, func(it *setupItem) bool { return it.name == name }) {
			continue
		}
		it := &setupItem{kind: "secret", name: name}
		items = append(items, it)
		_, generated := s.Env.InitSecrets[name]
		if v, ok := versions.Newest(name); ok {
			it.msg = fmt.Sprintf("v%d exists (%s)", v.N, v.Name)
			if o.Secret == name {
				it.msg += fmt.Sprintf("; the input was not read: a new value is a rotation (go tool mage secrets:rotate %s %s)", s.Env.Name, name)
			}
			continue
		}
		switch {
		case generated && initErr != nil:
			it.state, it.err = itemFailed, initErr
		case generated:
			it.state, it.how, it.generated = itemCreate, "a generated value, as init_secrets says; not shown", true
		case values[name].IsSet():
			it.state, it.how = itemCreate, "its value read from standard input; not shown"
			if o.Input.Terminal {
				it.how = "its value asked for without echo; not shown"
			}
		case values == nil && o.Secret == name:
			it.state, it.how, it.read = itemCreate, "its value read from standard input; not shown", true
			if o.Input.Terminal {
				it.how = "its value asked for without echo; not shown"
			}
		case values == nil && o.Secret == "" && o.Input.Terminal:
			it.state, it.how, it.read = itemCreate, "its value asked for without echo; not shown", true
		default:
			it.state = itemPending
			it.msg = fmt.Sprintf("no version yet, and no value in this run: printf '%%s' \"$VALUE\" | go tool mage deploy:setup %s -secret=%s (one secret per run), or run deploy:setup on a terminal to be asked for each",
				s.Env.Name, name)
		}
	}
	for _, name := range want.explicit {
		it := &setupItem{kind: "secret", name: name, msg: "exists (named explicitly in the stack files)"}
		if !names[name] {
			it.state, it.err = itemFailed, fmt.Errorf("missing (named explicitly in the stack files, so not versioned): create it with printf '%%s' \"$VALUE\" | docker secret create %s - against %s's endpoint", name, s.Env.Name)
		}
		items = append(items, it)
	}

	if len(want.networks) == 0 {
		return items, nil
	}
	ns, err := s.API.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	have := map[string]network.Summary{}
	for _, n := range ns.Items {
		have[n.Name] = n
	}
	for _, name := range want.networks {
		it := &setupItem{kind: "network", name: name}
		items = append(items, it)
		n, ok := have[name]
		switch {
		case ok && n.Scope == "local":
			it.state, it.err = itemFailed, fmt.Errorf("exists, but is a %s network of one engine (scope local): services cannot join it; remove it (docker network rm %s) for deploy:setup to make an overlay one, or name another network in the stack files", n.Driver, name)
		case ok:
			it.msg = "exists" + strings.TrimSuffix(" ("+strings.Trim(n.Driver+", "+n.Scope, ", ")+")", " ()")
		case nameProblem("network", name) != "":
			it.state, it.err = itemFailed, errors.New(nameProblem("network", name))
		default:
			it.state, it.how = itemCreate, "overlay, attachable"
		}
	}
	return items, nil
}

func setOf(lists ...[]string) map[string]bool {
	out := map[string]bool{}
	for _, l := range lists {
		for _, v := range l {
			out[v] = true
		}
	}
	return out
}

// applySetup makes what is missing under the deploy lock, deciding again
// from what exists once it holds it (another run may have made some), and
// returns what it made. planned is the plan made before the lock.
func (s *Session) applySetup(ctx context.Context, p *steps, planned []*setupItem, want setupWants, o SetupOptions, values map[string]secret.Value) []string {
	release, err := s.holdLock(ctx, "setup of "+s.Env.Name)
	if err != nil {
		p.fail("lock", err)
		for _, it := range planned {
			it.print(p, false)
		}
		return nil
	}
	defer release()
	p.ok("lock", "taken")
	items, err := s.planSetup(ctx, want, o, values)
	if err != nil {
		p.fail("secrets", err)
		return nil
	}
	if slices.ContainsFunc(items, func(it *setupItem) bool { return it.state == itemFailed }) {
		for _, it := range items {
			it.print(p, false)
		}
		return nil
	}
	var made []string
	generated := false
	for _, it := range items {
		if it.state != itemCreate {
			it.print(p, false)
			continue
		}
		switch {
		case it.kind == "network":
			if _, err := s.API.NetworkCreate(ctx, it.name, client.NetworkCreateOptions{Driver: "overlay", Attachable: true}); err != nil {
				p.fail("network", fmt.Errorf("%s: create: %w", it.name, err))
				continue
			}
			p.ok("network", it.name+": made (overlay, attachable)")
		case it.generated:
			// deploy:init's own code makes every missing init secret at
			// once, those another embeds first; the lines follow.
			if !generated {
				generated = true
				if err := ensureSecrets(ctx, s.API, s.Env, io.Discard, false); err != nil {
					p.fail("secret", fmt.Errorf("init_secrets: %w", err))
					return made
				}
			}
			versions, err := listVersions(ctx, s.API, s.Env.Stack)
			if err != nil {
				p.fail("secret", fmt.Errorf("%s: %w", it.name, err))
				continue
			}
			v, ok := versions.Newest(it.name)
			if !ok {
				p.fail("secret", fmt.Errorf("%s: no version after init_secrets made it", it.name))
				continue
			}
			p.ok("secret", fmt.Sprintf("%s: made %s (%s)", it.name, v.Name, it.how))
		default:
			v, err := SetSecret(ctx, s.API, s.Env.Stack, it.name, values[it.name])
			if err != nil {
				p.fail("secret", err)
				continue
			}
			p.ok("secret", fmt.Sprintf("%s: made %s (%s)", it.name, v.Name, it.how))
		}
		made = append(made, it.kind+" "+it.name)
	}
	return made
}

// secretRef finds ${{ secrets.NAME }} in a workflow's values.
var secretRef = regexp.MustCompile(`\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}`)

// workflowJob is what printCISecrets reads of a workflow's job: its
// maps as nodes, to keep the file's order.
type workflowJob struct {
	Environment yaml.Node `yaml:"environment"`
	Env         yaml.Node `yaml:"env"`
	Steps       []struct {
		Env  yaml.Node `yaml:"env"`
		With yaml.Node `yaml:"with"`
	} `yaml:"steps"`
}

// ciSecret is a secret a workflow's job reads, and the variable it is
// passed to the deploy as.
type ciSecret struct{ Name, Var string }

// workflowSecrets reads the jobs of the workflow at path that run in
// GitHub environment env, and the secrets each reads, in file order.
func workflowSecrets(path, env string) (jobs []string, secrets []ciSecret, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Jobs yaml.Node `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	add := func(vars yaml.Node) {
		for i := 0; i+1 < len(vars.Content); i += 2 {
			for _, m := range secretRef.FindAllStringSubmatch(vars.Content[i+1].Value, -1) {
				if name := m[1]; name != "GITHUB_TOKEN" && !seen[name] { // GitHub makes GITHUB_TOKEN
					seen[name] = true
					secrets = append(secrets, ciSecret{Name: name, Var: vars.Content[i].Value})
				}
			}
		}
	}
	for i := 0; i+1 < len(doc.Jobs.Content); i += 2 {
		var job workflowJob
		if err := doc.Jobs.Content[i+1].Decode(&job); err != nil {
			return nil, nil, fmt.Errorf("%s: jobs.%s: %w", path, doc.Jobs.Content[i].Value, err)
		}
		name := job.Environment.Value
		if job.Environment.Kind == yaml.MappingNode {
			var e struct {
				Name string `yaml:"name"`
			}
			_ = job.Environment.Decode(&e)
			name = e.Name
		}
		if name != env {
			continue
		}
		jobs = append(jobs, doc.Jobs.Content[i].Value)
		add(job.Env)
		for _, st := range job.Steps {
			add(st.Env)
			add(st.With)
		}
	}
	return jobs, secrets, nil
}

// printCISecrets lists the environment secrets the CI workflow's jobs for
// this environment read: names, and what each is for. Never a value.
func (s *Session) printCISecrets(p *steps, workflow string) {
	if workflow == "" {
		return
	}
	jobs, secrets, err := workflowSecrets(workflow, s.Env.Name)
	switch {
	case err != nil:
		p.warn("ci", fmt.Sprintf("cannot list the secrets CI needs: %v", err))
		return
	case len(jobs) == 0:
		p.ok("ci", fmt.Sprintf("%s has no job with environment: %s: CI does not deploy it, and needs no secret for it", workflow, s.Env.Name))
		return
	}
	p.ok("ci", fmt.Sprintf("%s deploys %s in job %s, which reads these %d secrets of GitHub environment %s (names only: the values go in the repository's Settings > Environments > %s, never in a file):",
		workflow, s.Env.Name, strings.Join(jobs, ", "), len(secrets), s.Env.Name, s.Env.Name))
	width := 0
	for _, c := range secrets {
		width = max(width, len(c.Name))
	}
	for _, c := range secrets {
		fmt.Fprintf(p.w, "%20s%-*s  %s\n", "", width, c.Name, s.ciPurpose(c))
	}
}

// ciPurpose says what a CI secret is for, from the variable the workflow
// passes it to the deploy as, and whether this environment needs it.
func (s *Session) ciPurpose(c ciSecret) string {
	env, prefix := s.Env, endpoint.Prefix(s.Env.Name, true)
	mgr, note := "the manager", ""
	for _, other := range s.Envs {
		if p := endpoint.Prefix(other.Name, false); other != s.Env && strings.HasPrefix(c.Var, p) {
			env, prefix, mgr = other, p, other.Name+"'s manager"
			if s.Env.PromoteFrom == other.Name {
				note = fmt.Sprintf("; %s promotes from %s: its deploy history is read", s.Env.Name, other.Name)
			}
		}
	}
	scheme, _, found := strings.Cut(env.Managers()[0], "://")
	if !found {
		scheme = ""
	}
	notUsed := func(want string) string {
		return fmt.Sprintf("not used: %s's endpoint is %s, not %s://", env.Name, cmpOr(scheme+"://", "this machine's engine"), want)
	}
	switch suffix, ok := strings.CutPrefix(c.Var, prefix); {
	case ok && suffix == "HOST":
		need := "needed: " + env.Name + " has no endpoint: in " + envfile.DefaultPath
		if env.Managers()[0] != "" {
			need = "optional: overrides endpoint: of " + env.Name + " in " + envfile.DefaultPath
		}
		return need + "; " + mgr + "'s endpoint (ssh://user@host or tcp://host:2376; several comma-separated)" + note
	case ok && suffix == "SSH_KEY":
		if scheme != "ssh" {
			return notUsed("ssh")
		}
		return "needed: the private key of the ssh user on " + mgr + " (a user allowed to use Docker there)" + note
	case ok && suffix == "SSH_KNOWN_HOSTS":
		if scheme != "ssh" {
			return notUsed("ssh")
		}
		return "needed: " + mgr + "'s host key line(s) (ssh-keyscan HOST, checked against the host's own fingerprint): ssh refuses an unknown host in CI" + note
	case ok && strings.HasPrefix(suffix, "TLS_"):
		if scheme != "tcp" {
			return notUsed("tcp")
		}
		what := map[string]string{"TLS_CA": "the CA certificate that signed the engine's certificate", "TLS_CERT": "the client certificate the engine trusts", "TLS_KEY": "that client certificate's private key"}[suffix]
		return "needed: " + cmpOr(what, "TLS material") + ", for " + mgr + "'s engine (PEM)" + note
	case c.Var == "REGISTRY_USERNAME":
		return fmt.Sprintf("needed for a private image: the user of a read-only token of %s, for the nodes to pull %s (Swarm keeps it in the service spec and pulls with it on every reschedule)", registryHost(s.Env.Image), s.Env.Image)
	case c.Var == "REGISTRY_PASSWORD":
		return "needed for a private image: that read-only token (ghcr.io: a token with read:packages only), not the job's short-lived GITHUB_TOKEN"
	case s.Env.Notify != nil && c.Var == s.Env.Notify.URLEnv:
		return "optional: the webhook URL deploy events are POSTed to (notify.url_env); unset, a deploy warns and goes on"
	case strings.HasSuffix(c.Var, "_URL") && s.Env.Notify == nil:
		return fmt.Sprintf("not used: %s has no notify: in %s", s.Env.Name, envfile.DefaultPath)
	}
	return "passed to the deploy as " + c.Var
}
