package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/internal/probe"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

// judgeSmoke says why a round of answers fails the check, or "" when it
// passes: every /ready 200, and every /version 200 reporting want (not
// checked when want is empty).
func judgeSmoke(rs []probe.Result, ready, version, want string) string {
	var why []string
	seen := map[string]int{}
	for _, r := range rs {
		seen[r.URL]++
		where := r.URL
		if r.Address != "" {
			where += " at " + r.Address
		}
		switch {
		case r.Error != "":
			why = append(why, fmt.Sprintf("%s: %s", where, r.Error))
		case r.Status != http.StatusOK:
			why = append(why, fmt.Sprintf("%s answered %d %s", where, r.Status, short(strings.TrimSpace(r.Text+string(r.Body)), 120)))
		case r.URL == version && want != "":
			var v struct {
				Version string `json:"version"`
			}
			if err := json.Unmarshal(r.Body, &v); err != nil || v.Version == "" {
				why = append(why, fmt.Sprintf("%s answered no version", where))
			} else if v.Version != want {
				why = append(why, fmt.Sprintf("%s reports version %s, not %s", where, v.Version, want))
			}
		}
	}
	for _, u := range []string{ready, version} {
		if seen[u] == 0 {
			why = append(why, u+": no answer")
		}
	}
	return strings.Join(why, "; ")
}

// smokeRetry is the pause between two rounds of a smoke check.
var smokeRetry = 2 * time.Second

// errNoProbe: the release's image predates `app probe`.
var errNoProbe = errors.New("the release's image has no app probe command")

// smokeCheck asks the environment's smoke URLs until they pass or the
// smoke timeout passes. want is the version /version must report ("" when
// the release has none to compare).
func (s *Session) smokeCheck(ctx context.Context, specs map[string]swarm.ServiceSpec, want string) error {
	sm := s.Env.Smoke
	ready, version := sm.URLs()
	wantText := "the release's version " + want
	if want == "" {
		wantText = "a version (the release has none to compare)"
	}
	where := "from this machine"
	if sm.Service != "" {
		where = "on the stack's network, by a job from the release's image"
	}
	fmt.Fprintf(s.Out, "Smoke check %s: %s must answer 200, %s with %s (up to %s)\n", where, ready, version, wantText, sm.Timeout)
	start := time.Now()
	last := ""
	for {
		rs, err := s.smokeRound(ctx, specs, ready, version)
		if errors.Is(err, errNoProbe) {
			fmt.Fprintf(s.Out, "warning: smoke check skipped: %v (built before it existed)\n", err)
			return nil
		}
		why := judgeSmoke(rs, ready, version, want)
		if err != nil && len(rs) == 0 {
			why = err.Error()
		}
		if why == "" {
			fmt.Fprintf(s.Out, "Smoke check: passed in %s (%d answers)\n", time.Since(start).Round(100*time.Millisecond), len(rs))
			return nil
		}
		if time.Since(start) >= sm.Timeout || ctx.Err() != nil {
			return fmt.Errorf("smoke check failed: %s", why)
		}
		if why != last {
			fmt.Fprintf(s.Out, "  [%3.0fs] not yet: %s\n", time.Since(start).Seconds(), why)
			last = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("smoke check: %w (last: %s)", ctx.Err(), why)
		case <-time.After(smokeRetry):
		}
	}
}

// nothingToSmoke says why a smoke check has no one to ask ("" when it
// has): every service it would ask (its service, or else those running the
// release's repository) is scaled to 0, which is a legitimate change.
func nothingToSmoke(sm *envfile.Smoke, specs map[string]swarm.ServiceSpec, repo string) string {
	var names []string
	for name, spec := range specs {
		if name == sm.Service || (sm.Service == "" && ImageOf(spec).Repository == repo) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	for _, name := range names {
		m := specs[name].Mode.Replicated
		if m == nil || m.Replicas == nil || *m.Replicas > 0 {
			return ""
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ") + " run(s) 0 replicas"
}

// smokeRound asks once.
func (s *Session) smokeRound(ctx context.Context, specs map[string]swarm.ServiceSpec, ready, version string) ([]probe.Result, error) {
	if s.Env.Smoke.Service == "" {
		var rs []probe.Result
		for _, u := range []string{ready, version} {
			parsed, err := url.Parse(u)
			if err != nil {
				return nil, err
			}
			rs = append(rs, probe.Get(ctx, parsed, ""))
		}
		return rs, nil
	}
	base, ok := probeBase(specs, s.Env.Smoke.Service, s.Env.Image)
	if !ok {
		return nil, fmt.Errorf("no service of the stack runs the release's image (%s) to probe from", s.Env.Image)
	}
	// Its own networks only: on traefik-public, tasks.app is every stack's app.
	base = ownNetworks(base, s.Env.Stack, nil)
	out, err := s.runJob(ctx, base, JobOptions{
		Purpose: "smoke", Args: []string{"probe", "-all", ready, version},
		Deadline: min(s.Env.Smoke.Timeout, time.Minute), Warn: s.Out,
	})
	if strings.Contains(out, `unknown command "probe"`) {
		return nil, errNoProbe
	}
	return probe.Parse(out), err
}

// probeBase is the spec a probing job copies: the service itself when it
// runs the release's image, else the first that does (sorted by name).
func probeBase(specs map[string]swarm.ServiceSpec, service, repo string) (swarm.ServiceSpec, bool) {
	if s, ok := specs[service]; ok && ImageOf(s).Repository == repo {
		return s, true
	}
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		if ImageOf(specs[name]).Repository == repo {
			return specs[name], true
		}
	}
	return swarm.ServiceSpec{}, false
}

// checkSmoke adds the smoke check's preflight line: its service must be
// one the change leaves running.
func (s *Session) checkSmoke(desired *Desired, cs *Checks) {
	sm := s.Env.Smoke
	switch {
	case sm == nil:
	case sm.URL != "":
		cs.Add("smoke", "after convergence, from this machine: "+sm.URL, nil)
	case desired.Services[sm.Service].TaskTemplate.ContainerSpec == nil:
		cs.Add("smoke", "", fmt.Errorf("smoke.service %q of environment %s is not a service of the stack (it has: %s); fix %s",
			sm.Service, s.Env.Name, strings.Join(slices.Sorted(maps.Keys(desired.Services)), ", "), envfile.DefaultPath))
	default:
		cs.Add("smoke", fmt.Sprintf("after convergence, on the stack's network: tasks.%s:%d%s", sm.Service, sm.Port, sm.Path), nil)
	}
}
