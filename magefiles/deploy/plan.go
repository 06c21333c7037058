package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Action is what a plan does to one service.
type Action string

// The actions, in the order a plan lists them.
const (
	Create    Action = "create"
	Update    Action = "update"
	Remove    Action = "remove"
	Unchanged Action = "unchanged"
)

// ServiceChange is one service in a plan.
type ServiceChange struct {
	Name   string // without the stack prefix
	Action Action
	// Old is the live spec (nil for a create), New the desired one (nil for
	// a remove). Old is also what a failed deploy restores.
	Old, New *swarm.ServiceSpec
	// Rolling: the tasks change, so Swarm replaces them one by one under
	// the update_config; otherwise only the service record changes (say,
	// its replicas).
	Rolling bool
	// Changed lists what differs, for people: "image", "replicas",
	// "env +KEY", "update_config.delay 10s -> 5s", field paths otherwise.
	// Values of environment variables are never listed.
	Changed []string
}

// Plan is what a deploy will do, computed before it does anything.
type Plan struct {
	Env, Stack     string
	Release        Release
	Services       []ServiceChange
	CreateNetworks []string
	CreateConfigs  []string
	// Migrations are the release's pending migrations, when a deploy
	// changes the release's image; nil otherwise.
	Migrations *Migrations
	// specs of networks and configs to create, by name
	networks map[string]client.NetworkCreateOptions
	configs  map[string]swarm.ConfigSpec
}

// Touched are the services the plan changes.
func (p *Plan) Touched() []ServiceChange {
	var out []ServiceChange
	for _, s := range p.Services {
		if s.Action != Unchanged {
			out = append(out, s)
		}
	}
	return out
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool {
	return len(p.Touched()) == 0 && len(p.CreateNetworks) == 0 && len(p.CreateConfigs) == 0
}

// makePlan diffs desired against live. Services the stack files no longer
// name are removed. desired's images must already be resolved to digests.
func makePlan(env string, rel Release, desired *Desired, live *Live) *Plan {
	p := &Plan{Env: env, Stack: desired.Stack, Release: rel, networks: map[string]client.NetworkCreateOptions{}, configs: map[string]swarm.ConfigSpec{}}
	for _, name := range slices.Sorted(maps.Keys(desired.Networks)) {
		if !live.Networks[name] {
			p.CreateNetworks = append(p.CreateNetworks, name)
			p.networks[name] = desired.Networks[name]
		}
	}
	for _, c := range desired.Configs {
		if !live.Configs[c.Name] {
			p.CreateConfigs = append(p.CreateConfigs, c.Name)
			p.configs[c.Name] = c
		}
	}
	slices.Sort(p.CreateConfigs)

	names := slices.Sorted(maps.Keys(desired.Services))
	for _, name := range names {
		want := desired.Services[name]
		if _, ok := live.Services[name]; !ok {
			p.Services = append(p.Services, ServiceChange{Name: name, Action: Create, New: &want, Rolling: true, Changed: []string{"new service"}})
			continue
		}
		have := live.Spec(name)
		want = withDefaults(want)
		// As docker stack deploy does: a deploy never forces a restart, so
		// the live counter carries over.
		want.TaskTemplate.ForceUpdate = have.TaskTemplate.ForceUpdate
		p.Services = append(p.Services, diffService(name, have, want))
	}
	for _, name := range slices.Sorted(maps.Keys(live.Services)) {
		if _, ok := desired.Services[name]; !ok {
			have := live.Spec(name)
			p.Services = append(p.Services, ServiceChange{Name: name, Action: Remove, Old: &have, Changed: []string{"not in the stack files"}})
		}
	}
	slices.SortStableFunc(p.Services, func(a, b ServiceChange) int { return strings.Compare(a.Name, b.Name) })
	return p
}

// diffService compares two specs of one service.
func diffService(name string, have, want swarm.ServiceSpec) ServiceChange {
	c := ServiceChange{Name: name, Action: Unchanged, Old: &have, New: &want}
	a, b := toMap(have), toMap(want)
	var paths []string
	diffPaths("", a, b, &paths)
	if len(paths) == 0 {
		return c
	}
	c.Action = Update
	c.Rolling = !sameJSON(have.TaskTemplate, want.TaskTemplate) || !sameJSON(have.EndpointSpec, want.EndpointSpec)
	c.Changed = describe(have, want, paths)
	return c
}

// describe turns the differing field paths into what people read.
func describe(have, want swarm.ServiceSpec, paths []string) []string {
	var out []string
	done := map[string]bool{}
	once := func(key, line string) {
		if !done[key] {
			done[key] = true
			out = append(out, line)
		}
	}
	for _, p := range paths {
		switch {
		case p == "Labels.com.docker.stack.image":
			// docker stack deploy's record of the file's image: it changes
			// with the image, which is listed.
		case strings.HasPrefix(p, "TaskTemplate.ContainerSpec.Image"):
			once("image", "image "+ImageOf(have).Short()+" -> "+ImageOf(want).Short())
		case strings.HasPrefix(p, "TaskTemplate.ContainerSpec.Env"):
			once("env", "env "+envDiff(have.TaskTemplate.ContainerSpec.Env, want.TaskTemplate.ContainerSpec.Env))
		case strings.HasPrefix(p, "Mode.Replicated.Replicas"):
			once("replicas", fmt.Sprintf("replicas %s -> %s", replicasText(have), replicasText(want)))
		case strings.HasPrefix(p, "UpdateConfig"), strings.HasPrefix(p, "RollbackConfig"):
			key := strings.SplitN(p, ".", 3)[:2]
			field := strings.Join(key, ".")
			once(field, fmt.Sprintf("%s %v -> %v", snake(field), fieldValue(have, key), fieldValue(want, key)))
		case strings.HasPrefix(p, "TaskTemplate.ContainerSpec.Secrets"):
			once("secrets", "secrets "+refDiff(secretNames(have), secretNames(want)))
		case strings.HasPrefix(p, "TaskTemplate.ContainerSpec.Configs"):
			once("configs", "configs "+refDiff(configNames(have), configNames(want)))
		case strings.HasPrefix(p, "TaskTemplate.Networks"):
			once("networks", "networks "+refDiff(networkNames(have), networkNames(want)))
		default:
			// Other fields by path only: a value could be anything.
			parts := strings.Split(p, ".")
			if len(parts) > 3 {
				parts = parts[:3]
			}
			f := strings.Join(parts, ".")
			once(f, snake(f))
		}
	}
	return out
}

// Image is a service's image reference, split for people.
type Image struct {
	Ref, Repository, Tag, Digest string
}

// ImageOf reads the image of a spec.
func ImageOf(spec swarm.ServiceSpec) Image {
	if spec.TaskTemplate.ContainerSpec == nil {
		return Image{}
	}
	return ParseImage(spec.TaskTemplate.ContainerSpec.Image)
}

// ParseImage splits ref; what does not parse is kept as Ref only.
func ParseImage(ref string) Image {
	img := Image{Ref: ref}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return img
	}
	img.Repository = named.Name()
	if t, ok := named.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		img.Digest = d.Digest().String()
	}
	return img
}

// Short is tag (digest prefix) for people: v1.2.3 (sha256:0123456789ab).
func (i Image) Short() string {
	if i.Repository == "" {
		return i.Ref
	}
	s := i.Tag
	if s == "" {
		s = "untagged"
	}
	if i.Digest != "" {
		d := i.Digest
		if len(d) > 19 {
			d = d[:19]
		}
		s += " (" + d + ")"
	}
	return s
}

func replicasText(s swarm.ServiceSpec) string {
	switch {
	case s.Mode.Replicated != nil && s.Mode.Replicated.Replicas != nil:
		return fmt.Sprint(*s.Mode.Replicated.Replicas)
	case s.Mode.Replicated != nil:
		return "1" // Swarm's default
	case s.Mode.Global != nil:
		return "global"
	}
	return "?"
}

// envDiff lists changed keys: +added ~changed -removed. Never values.
func envDiff(have, want []string) string {
	h, w := envMap(have), envMap(want)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		old, ok := h[k]
		switch {
		case !ok:
			parts = append(parts, "+"+k)
		case old != w[k]:
			parts = append(parts, "~"+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if _, ok := w[k]; !ok {
			parts = append(parts, "-"+k)
		}
	}
	if len(parts) == 0 {
		return "reordered"
	}
	return strings.Join(parts, " ")
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func refDiff(have, want []string) string {
	var parts []string
	for _, n := range want {
		if !slices.Contains(have, n) {
			parts = append(parts, "+"+n)
		}
	}
	for _, n := range have {
		if !slices.Contains(want, n) {
			parts = append(parts, "-"+n)
		}
	}
	if len(parts) == 0 {
		return "settings changed"
	}
	return strings.Join(parts, " ")
}

func secretNames(s swarm.ServiceSpec) []string {
	var out []string
	if cs := s.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Secrets {
			out = append(out, r.SecretName)
		}
	}
	return out
}

func configNames(s swarm.ServiceSpec) []string {
	var out []string
	if cs := s.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Configs {
			out = append(out, r.ConfigName)
		}
	}
	return out
}

func networkNames(s swarm.ServiceSpec) []string {
	var out []string
	for _, n := range s.TaskTemplate.Networks {
		out = append(out, n.Target)
	}
	return out
}

// fieldValue reads UpdateConfig.Delay and the like through JSON, shown as
// Swarm would print it.
func fieldValue(s swarm.ServiceSpec, path []string) any {
	var v any = toMap(s)
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "-"
		}
		v = m[k]
	}
	if v == nil {
		return "-"
	}
	if f, ok := v.(float64); ok && (path[len(path)-1] == "Delay" || path[len(path)-1] == "Monitor") {
		return time.Duration(f).String()
	}
	if m, ok := v.(map[string]any); ok {
		b, _ := json.Marshal(m)
		return string(b)
	}
	return v
}

// snake turns a Go field path into the stack file's words:
// UpdateConfig.FailureAction becomes update_config.failure_action.
func snake(path string) string {
	var b strings.Builder
	for i, r := range path {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && path[i-1] != '.' {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // specs always marshal
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// diffPaths appends the dotted paths where a and b differ.
func diffPaths(prefix string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			diffPaths(strings.TrimPrefix(prefix+"."+k, "."), am[k], bm[k], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, prefix)
	}
}

// Print writes the plan for people.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "Plan for %s (stack %s): %s\n", p.Env, p.Stack, releaseText(p.Release))
	for _, n := range p.CreateNetworks {
		fmt.Fprintf(w, "  network  %-20s create\n", n)
	}
	for _, c := range p.CreateConfigs {
		fmt.Fprintf(w, "  config   %-20s create\n", c)
	}
	for _, s := range p.Services {
		spec := s.New
		if spec == nil {
			spec = s.Old
		}
		fmt.Fprintf(w, "  service  %-20s %-9s %s, replicas %s\n", s.Name, s.Action, ImageOf(*spec).Short(), replicasText(*spec))
		if s.Action == Update {
			for _, c := range s.Changed {
				fmt.Fprintf(w, "           %-20s   %s\n", "", c)
			}
			if !s.Rolling {
				fmt.Fprintf(w, "           %-20s   (no task is replaced)\n", "")
			}
		}
	}
	p.Migrations.Print(w)
	if p.Empty() {
		fmt.Fprintln(w, "  nothing to change")
	}
}

func releaseText(r Release) string {
	if r.Repository == "" {
		return "restoring recorded specs"
	}
	return "release " + ParseImage(r.Ref()).Short()
}
