package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// probeResult is one line of `app probe` (app/probe.go), and what the
// deploying machine gets for a smoke URL: the shape is shared.
type probeResult struct {
	URL     string          `json:"url"`
	Address string          `json:"address,omitempty"`
	Status  int             `json:"status,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
	Text    string          `json:"text,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// parseProbe reads `app probe` lines out of a job's output.
func parseProbe(out string) []probeResult {
	var rs []probeResult
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r probeResult
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &r) == nil && r.URL != "" {
			rs = append(rs, r)
		}
	}
	return rs
}

// urls are the readiness and version URLs a smoke check asks.
func (s *Smoke) urls() (ready, version string) {
	base := strings.TrimSuffix(s.URL, "/") + "/"
	if s.Service != "" {
		base = fmt.Sprintf("http://tasks.%s:%d%s", s.Service, s.Port, strings.TrimSuffix(s.Path, "/")+"/")
	}
	return base + "ready", base + "version"
}

// judgeSmoke says why a round of answers fails the check, or "" when it
// passes: every /ready 200, and every /version 200 reporting want (not
// checked when want is empty).
func judgeSmoke(rs []probeResult, ready, version, want string) string {
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
func (d *Deployer) smokeCheck(ctx context.Context, specs map[string]swarm.ServiceSpec, want string) error {
	s := d.Env.Smoke
	ready, version := s.urls()
	wantText := "the release's version " + want
	if want == "" {
		wantText = "a version (the release has none to compare)"
	}
	where := "from this machine"
	if s.Service != "" {
		where = "on the stack's network, by a job from the release's image"
	}
	fmt.Fprintf(d.Out, "Smoke check %s: %s must answer 200, %s with %s (up to %s)\n", where, ready, version, wantText, s.Timeout)
	start := time.Now()
	last := ""
	for {
		rs, err := d.smokeRound(ctx, specs, ready, version)
		if errors.Is(err, errNoProbe) {
			fmt.Fprintf(d.Out, "warning: smoke check skipped: %v (built before it existed)\n", err)
			return nil
		}
		why := judgeSmoke(rs, ready, version, want)
		if err != nil && len(rs) == 0 {
			why = err.Error()
		}
		if why == "" {
			fmt.Fprintf(d.Out, "Smoke check: passed in %s (%d answers)\n", time.Since(start).Round(100*time.Millisecond), len(rs))
			return nil
		}
		if time.Since(start) >= s.Timeout || ctx.Err() != nil {
			return fmt.Errorf("smoke check failed: %s", why)
		}
		if why != last {
			fmt.Fprintf(d.Out, "  [%3.0fs] not yet: %s\n", time.Since(start).Seconds(), why)
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
func nothingToSmoke(s *Smoke, specs map[string]swarm.ServiceSpec, repo string) string {
	var names []string
	for name, spec := range specs {
		if name == s.Service || (s.Service == "" && ImageOf(spec).Repository == repo) {
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
func (d *Deployer) smokeRound(ctx context.Context, specs map[string]swarm.ServiceSpec, ready, version string) ([]probeResult, error) {
	if d.Env.Smoke.Service == "" {
		var rs []probeResult
		for _, u := range []string{ready, version} {
			rs = append(rs, getURL(ctx, u))
		}
		return rs, nil
	}
	base, ok := probeBase(specs, d.Env.Smoke.Service, d.Env.Image)
	if !ok {
		return nil, fmt.Errorf("no service of the stack runs the release's image (%s) to probe from", d.Env.Image)
	}
	out, err := RunJob(ctx, d.bg(), d.API, base, JobOptions{
		Name: jobName(d.Env.Stack, "smoke"), Stack: d.Env.Stack, Args: []string{"probe", "-all", ready, version},
		Deadline: min(d.Env.Smoke.Timeout, time.Minute), Warn: d.Out, Auth: d.Auth, Poll: d.Poll,
	})
	if strings.Contains(out, `unknown command "probe"`) {
		return nil, errNoProbe
	}
	return parseProbe(out), err
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

// smokeClient asks smoke URLs from the deploying machine.
var smokeClient = &http.Client{Timeout: 5 * time.Second}

func getURL(ctx context.Context, u string) probeResult {
	r := probeResult{URL: u}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	resp, err := smokeClient.Do(req)
	if err != nil {
		r.Error = unwrapURLError(err).Error()
		return r
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if b := []byte(strings.TrimSpace(string(body))); len(b) > 0 && json.Valid(b) {
		r.Body = b
	} else {
		r.Text = strings.ToValidUTF8(string(b), "?")
	}
	return r
}

// checkSmoke adds the smoke check's preflight line: its service must be
// one the change leaves running.
func (d *Deployer) checkSmoke(desired *Desired, cs *Checks) {
	s := d.Env.Smoke
	switch {
	case s == nil:
	case s.URL != "":
		cs.Add("smoke", "after convergence, from this machine: "+s.URL, nil)
	case desired.Services[s.Service].TaskTemplate.ContainerSpec == nil:
		cs.Add("smoke", "", fmt.Errorf("smoke.service %q of environment %s is not a service of the stack (it has: %s); fix %s",
			s.Service, d.Env.Name, strings.Join(slices.Sorted(maps.Keys(desired.Services)), ", "), EnvironmentsFile))
	default:
		cs.Add("smoke", fmt.Sprintf("after convergence, on the stack's network: tasks.%s:%d%s", s.Service, s.Port, s.Path), nil)
	}
}
