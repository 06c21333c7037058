// Package dockerfile holds a Dockerfile to the rules of an image that is
// deployed, reading it with BuildKit's own parser: what docker build reads,
// not an approximation of it.
//
// The rules, each reported with the line at fault:
//   - every final stage (the last one, and any stage no other stage builds
//     on or copies from: each can be a --target) runs as a numeric user
//     other than root, and has a health check;
//   - ENTRYPOINT, CMD and HEALTHCHECK are in exec (JSON) form;
//   - every base image is pinned: a tag other than latest, or a digest,
//     also when it comes from an ARG default (FROM ${BUILDER_IMAGE});
//   - no ARG or ENV looks like a secret (the production stack's rule, see
//     stack.SecretLooking): both stay readable in the image;
//   - BuildKit's own parse-time checks (those `docker build --check` runs
//     while parsing) pass.
package dockerfile

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/fractionate/service-template/magefiles/lint/problem"
	"github.com/fractionate/service-template/magefiles/stack"
)

// CheckFile checks the Dockerfile at path; errors name it as label.
func CheckFile(path, label string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer f.Close()
	return Check(label, f)
}

// Check reads a Dockerfile from src and returns a *problem.List naming
// file when it breaks a rule, nil when it keeps them all.
func Check(file string, src io.Reader) error {
	ps := &problem.List{File: file}
	add := ps.Add
	res, err := parser.Parse(src)
	if err != nil {
		add(errorLine(err), "%v", err)
		return ps.Err()
	}
	for _, w := range res.Warnings {
		add(rangeLine(rangesOf(w.Location)), "%s (BuildKit)", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		add(rangeLine(loc), "%s (BuildKit check %s)", msg, rule)
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		add(errorLine(err), "%v", err)
		return ps.Err()
	}
	lex := shell.NewLex(res.EscapeToken)
	global := vars{}
	for _, a := range metaArgs {
		checkArgs(add, &a)
		global.declare(lex, a.Args, nil)
	}
	checkStages(add, lex, global, stages)
	return ps.Err()
}

type addFunc func(line int, format string, args ...any)

// stageInfo is what the rules need to know of one stage.
type stageInfo struct {
	instructions.Stage
	base        int // index of the stage it is built on, -1 for an image
	user        *instructions.UserCommand
	health      *instructions.HealthCheckCommand
	usedByLater bool
}

func checkStages(add addFunc, lex *shell.Lex, global vars, stages []instructions.Stage) {
	byName := map[string]int{}
	infos := make([]*stageInfo, len(stages))
	for i, s := range stages {
		info := &stageInfo{Stage: s, base: -1}
		infos[i] = info
		from := line(s.Location)
		base, err := expand(lex, s.BaseName, global)
		switch idx, isStage := byName[strings.ToLower(base)]; {
		case err != nil:
			add(from, "FROM %s: %v", s.BaseName, err)
		case isStage:
			info.base = idx
			infos[idx].usedByLater = true
		default:
			checkImage(add, from, "FROM "+s.BaseName, s.BaseName, base)
		}
		if s.Name != "" {
			byName[strings.ToLower(s.Name)] = i
		}
		// A stage sees a global ARG only when it declares it again.
		local := vars{}
		for _, c := range s.Commands {
			at := line(c.Location())
			switch c := c.(type) {
			case *instructions.ArgCommand:
				checkArgs(add, c)
				local.declare(lex, c.Args, global)
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if stack.SecretLooking(kv.Key, &kv.Value) {
						add(at, "ENV %s: looks like a secret, and ENV is readable by anyone with the image (docker inspect); pass it at run time (a Docker secret and %s_FILE)", kv.Key, kv.Key)
					}
				}
			case *instructions.UserCommand:
				u := *c
				if v, err := expand(lex, c.User, local); err == nil {
					u.User = v
				}
				info.user = &u
			case *instructions.HealthCheckCommand:
				info.health = c
				if t := c.Health.Test; len(t) > 0 && t[0] == "CMD-SHELL" {
					add(at, "HEALTHCHECK in shell form runs through /bin/sh, which a minimal image lacks; use the exec form: HEALTHCHECK CMD [\"...\"]")
				}
			case *instructions.EntrypointCommand:
				if c.PrependShell {
					add(at, "ENTRYPOINT in shell form runs under /bin/sh -c, which a minimal image lacks and which keeps SIGTERM from the process; use the exec form: ENTRYPOINT [\"...\"]")
				}
			case *instructions.CmdCommand:
				if c.PrependShell {
					add(at, "CMD in shell form runs under /bin/sh -c, which a minimal image lacks and which keeps SIGTERM from the process; use the exec form: CMD [\"...\"]")
				}
			case *instructions.CopyCommand:
				if c.From == "" {
					continue
				}
				if n, err := strconv.Atoi(c.From); err == nil && n >= 0 && n < i {
					infos[n].usedByLater = true
					continue
				}
				src, err := expand(lex, c.From, local)
				if idx, isStage := byName[strings.ToLower(src)]; err == nil && isStage {
					infos[idx].usedByLater = true
					continue
				}
				if err != nil {
					add(at, "COPY --from=%s: %v", c.From, err)
					continue
				}
				checkImage(add, at, "COPY --from="+c.From, c.From, src)
			}
		}
	}
	for i, info := range infos {
		if info.usedByLater && i != len(infos)-1 {
			continue
		}
		checkFinal(add, infos, info)
	}
}

// checkFinal holds a stage that can be the image shipped to the USER and
// HEALTHCHECK rules; a stage inherits both from the stage it is built on.
func checkFinal(add addFunc, infos []*stageInfo, s *stageInfo) {
	name := s.Name
	if name == "" {
		name = "(unnamed)"
	}
	from := line(s.Location)
	user, health := s.user, s.health
	for b := s.base; b >= 0 && (user == nil || health == nil); b = infos[b].base {
		user, health = cmp.Or(user, infos[b].user), cmp.Or(health, infos[b].health)
	}
	if user == nil {
		add(from, "final stage %s sets no USER, so it runs as root; add USER with a numeric uid:gid other than 0 (e.g. USER 65532:65532)", name)
	} else if err := numericNonRoot(user.User); err != nil {
		add(line(user.Location()), "final stage %s: USER %s: %v", name, user.User, err)
	}
	switch {
	case health == nil:
		add(from, "final stage %s has no HEALTHCHECK: Swarm needs one to tell a failed update and roll it back", name)
	case len(health.Health.Test) > 0 && health.Health.Test[0] == "NONE":
		add(line(health.Location()), "final stage %s: HEALTHCHECK NONE disables the health check Swarm needs to roll a failed update back", name)
	}
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// numericNonRoot checks a USER value: uid[:gid], both numeric, uid not 0.
// A name needs /etc/passwd to mean anything, and a runtime that must refuse
// root (runAsNonRoot) cannot tell a name from root.
func numericNonRoot(u string) error {
	uid, gid, hasGID := strings.Cut(u, ":")
	switch {
	case !digits.MatchString(uid) || (hasGID && !digits.MatchString(gid)):
		return errors.New("want a numeric uid[:gid]: a name needs /etc/passwd, and a runtime cannot tell a named user from root")
	case strings.TrimLeft(uid, "0") == "":
		return errors.New("uid 0 is root")
	}
	return nil
}

// checkImage holds an image reference (resolved, from the text written in
// the instruction shown as what) to a tag other than latest, or a digest.
func checkImage(add addFunc, at int, what, written, resolved string) {
	if strings.EqualFold(resolved, "scratch") {
		return
	}
	shown := what
	if resolved != written {
		shown = fmt.Sprintf("%s (%s with the ARG defaults)", what, resolved)
	}
	ref, err := reference.ParseNormalizedNamed(resolved)
	if err != nil {
		add(at, "%s: not an image reference: %v", shown, err)
		return
	}
	if _, ok := ref.(reference.Digested); ok {
		return
	}
	switch t, ok := ref.(reference.Tagged); {
	case !ok:
		add(at, "%s: no tag, which means latest; pin a version tag or a digest", shown)
	case t.Tag() == "latest":
		add(at, "%s: latest changes under you; pin a version tag or a digest", shown)
	}
}

func checkArgs(add addFunc, a *instructions.ArgCommand) {
	for _, kv := range a.Args {
		if stack.SecretLooking(kv.Key, kv.Value) {
			add(line(a.Location()), "ARG %s: looks like a secret, and build arguments stay readable in the image's history (docker history); use a secret mount (RUN --mount=type=secret)", kv.Key)
		}
	}
}

// vars are ARG values known at a point of the file, for expanding FROM,
// COPY --from and USER as the builder would with no --build-arg given.
type vars map[string]string

func (v vars) Get(k string) (string, bool) { s, ok := v[k]; return s, ok }

func (v vars) Keys() []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	return keys
}

// declare records ARGs in order: a default may use the ARGs before it; an
// ARG without a default takes the value of the same name in inherit (the
// global ARGs, for a stage), if any.
func (v vars) declare(lex *shell.Lex, args []instructions.KeyValuePairOptional, inherit vars) {
	for _, kv := range args {
		if kv.Value == nil {
			if s, ok := inherit[kv.Key]; ok {
				v[kv.Key] = s
			}
			continue
		}
		if s, _, err := lex.ProcessWord(*kv.Value, v); err == nil {
			v[kv.Key] = s
		}
	}
}

// expand substitutes ARG values in word; an ARG with no value is an error,
// since the result would depend on --build-arg.
func expand(lex *shell.Lex, word string, v vars) (string, error) {
	res, err := lex.ProcessWordWithMatches(word, v)
	if err != nil {
		return "", err
	}
	if len(res.Unmatched) > 0 {
		names := make([]string, 0, len(res.Unmatched))
		for n := range res.Unmatched {
			names = append(names, n)
		}
		slices.Sort(names)
		return "", fmt.Errorf("uses ARG %s, which has no default: the result depends on --build-arg", strings.Join(names, ", "))
	}
	return res.Result, nil
}

func line(r []parser.Range) int { return rangeLine(r) }

func rangeLine(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

func rangesOf(r *parser.Range) []parser.Range {
	if r == nil {
		return nil
	}
	return []parser.Range{*r}
}

// errorLine is the first line a BuildKit error points at, 0 when none.
func errorLine(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 {
		return rangeLine(le.Locations[0])
	}
	return 0
}
