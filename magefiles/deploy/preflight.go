package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Check is one line of a preflight: what was checked and, when it failed,
// what is wrong and how to fix it.
type Check struct {
	Name string
	OK   string // what was found, when it passed
	Err  error  // what is wrong and how to fix it
}

// Checks is a preflight's result.
type Checks []Check

// Add records a check.
func (cs *Checks) Add(name string, ok string, err error) { *cs = append(*cs, Check{name, ok, err}) }

// Failed reports whether any check failed.
func (cs Checks) Failed() bool {
	return slices.ContainsFunc(cs, func(c Check) bool { return c.Err != nil })
}

// Err joins the failures.
func (cs Checks) Err() error {
	var errs []error
	for _, c := range cs {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.Err))
		}
	}
	return errors.Join(errs...)
}

// Print writes one line per check.
func (cs Checks) Print(w io.Writer) {
	fmt.Fprintln(w, "Preflight:")
	for _, c := range cs {
		if c.Err != nil {
			fmt.Fprintf(w, "  FAIL  %-10s %s\n", c.Name, strings.ReplaceAll(c.Err.Error(), "\n", "\n                   "))
		} else {
			fmt.Fprintf(w, "  ok    %-10s %s\n", c.Name, c.OK)
		}
	}
}

// checkManager checks that the endpoint answers and is a Swarm manager.
func checkManager(ctx context.Context, api client.APIClient, ep string, cs *Checks) bool {
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		cs.Add("endpoint", "", fmt.Errorf("%s does not answer: %w", ep, err))
		return false
	}
	cs.Add("endpoint", fmt.Sprintf("%s answers (Docker %s)", ep, info.Info.ServerVersion), nil)
	sw := info.Info.Swarm
	if sw.LocalNodeState != swarm.LocalNodeStateActive || !sw.ControlAvailable {
		hint := "run deploys against a manager node"
		if sw.LocalNodeState == swarm.LocalNodeStateInactive {
			hint = "this engine is not in a Swarm; for the local environment run: go tool mage deploy:init local"
		}
		cs.Add("swarm", "", fmt.Errorf("%s is not a Swarm manager (node state %s): %s", ep, sw.LocalNodeState, hint))
		return false
	}
	cs.Add("swarm", fmt.Sprintf("manager of Swarm %s", short(sw.Cluster.ID, 12)), nil)
	return true
}

// checkNodes checks that nodes are ready and that each service's placement
// constraints match at least one of them.
func checkNodes(ctx context.Context, api client.APIClient, services map[string]swarm.ServiceSpec, cs *Checks) {
	ns, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		cs.Add("nodes", "", fmt.Errorf("list nodes: %w", err))
		return
	}
	var ready []swarm.Node
	var down []string
	for _, n := range ns.Items {
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			ready = append(ready, n)
		} else {
			down = append(down, fmt.Sprintf("%s (%s, %s)", n.Description.Hostname, n.Status.State, n.Spec.Availability))
		}
	}
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(services)) {
		var constraints []string
		if p := services[name].TaskTemplate.Placement; p != nil {
			constraints = p.Constraints
		}
		fit := 0
		for _, n := range ready {
			ok, err := MatchConstraints(constraints, n)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", name, err))
				break
			}
			if ok {
				fit++
			}
		}
		if fit == 0 {
			errs = append(errs, fmt.Sprintf("service %s: no ready node matches its placement constraints %q", name, constraints))
		}
	}
	if len(errs) > 0 {
		cs.Add("nodes", "", errors.New(strings.Join(errs, "; ")))
		return
	}
	msg := fmt.Sprintf("%d ready", len(ready))
	if len(down) > 0 {
		msg += "; not ready or not active: " + strings.Join(down, ", ")
	}
	cs.Add("nodes", msg, nil)
}

// MatchConstraints evaluates Swarm placement constraints (==, != on
// node.id, node.hostname, node.role, node.platform.os/arch, node.labels.*,
// engine.labels.*) against a node, as the scheduler does.
func MatchConstraints(constraints []string, n swarm.Node) (bool, error) {
	for _, c := range constraints {
		op := "=="
		k, v, ok := strings.Cut(c, "==")
		if !ok {
			if k, v, ok = strings.Cut(c, "!="); !ok {
				return false, fmt.Errorf("constraint %q: want key==value or key!=value", c)
			}
			op = "!="
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var have string
		var found bool
		switch {
		case k == "node.id":
			have, found = n.ID, true
		case k == "node.hostname":
			have, found = n.Description.Hostname, true
		case k == "node.role":
			have, found = string(n.Spec.Role), true
		case k == "node.platform.os":
			have, found = n.Description.Platform.OS, true
		case k == "node.platform.arch":
			have, found = n.Description.Platform.Architecture, true
		case strings.HasPrefix(k, "node.labels."):
			have, found = n.Spec.Labels[strings.TrimPrefix(k, "node.labels.")]
		case strings.HasPrefix(k, "engine.labels."):
			have, found = n.Description.Engine.Labels[strings.TrimPrefix(k, "engine.labels.")]
		default:
			return false, fmt.Errorf("constraint %q: unknown key %s", c, k)
		}
		// Labels compare exactly; names and roles without regard to case.
		eq := found && strings.EqualFold(have, v)
		if strings.HasPrefix(k, "node.labels.") || strings.HasPrefix(k, "engine.labels.") {
			eq = found && have == v
		}
		if (op == "==") != eq {
			return false, nil
		}
	}
	return true, nil
}
