package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
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
	var errs, warnings []string
	for _, name := range slices.Sorted(maps.Keys(services)) {
		var constraints []string
		if p := services[name].TaskTemplate.Placement; p != nil {
			constraints = p.Constraints
		}
		fit := 0
		for i, n := range ready {
			ok, unknown, err := MatchConstraints(constraints, n)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", name, err))
				break
			}
			if i == 0 && len(unknown) > 0 {
				warnings = append(warnings, fmt.Sprintf("service %s: %q not checked (a key this check does not know; if Swarm does not either, no node runs it)", name, unknown))
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
	if len(warnings) > 0 {
		msg += "; warning: " + strings.Join(warnings, "; ")
	}
	cs.Add("nodes", msg, nil)
}

// MatchConstraints evaluates Swarm placement constraints (==, != on
// node.id, node.hostname, node.ip, node.role, node.platform.os/arch,
// node.labels.*, engine.labels.*) against a node as swarmkit's scheduler
// does (manager/constraint): keys and values without regard to case, but
// for a label's own name; node.ip against an address or a CIDR subnet. A
// key the scheduler of this code's time does not know is returned in
// unknown, not evaluated: a newer engine may know it.
func MatchConstraints(constraints []string, n swarm.Node) (match bool, unknown []string, err error) {
	match = true
	for _, c := range constraints {
		// "==" is tried first, as swarmkit does.
		op := "=="
		k, v, ok := strings.Cut(c, "==")
		if !ok {
			if k, v, ok = strings.Cut(c, "!="); !ok {
				return false, nil, fmt.Errorf("constraint %q: want key==value or key!=value", c)
			}
			op = "!="
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var have string
		switch lk := strings.ToLower(k); {
		case lk == "node.id":
			have = n.ID
		case lk == "node.hostname":
			have = n.Description.Hostname
		case lk == "node.ip":
			in, err := ipMatches(v, n.Status.Addr)
			if err != nil {
				return false, nil, fmt.Errorf("constraint %q: %w", c, err)
			}
			if in != (op == "==") {
				match = false
			}
			continue
		case lk == "node.role":
			have = string(n.Spec.Role)
		case lk == "node.platform.os":
			have = n.Description.Platform.OS
		case lk == "node.platform.arch":
			have = n.Description.Platform.Architecture
		case len(k) > len(nodeLabels) && strings.HasPrefix(lk, nodeLabels):
			have = n.Spec.Labels[k[len(nodeLabels):]] // "" when missing, as in swarmkit
		case len(k) > len(engineLabels) && strings.HasPrefix(lk, engineLabels):
			have = n.Description.Engine.Labels[k[len(engineLabels):]]
		default:
			unknown = append(unknown, c)
			continue
		}
		if strings.EqualFold(have, v) != (op == "==") {
			match = false
		}
	}
	return match, unknown, nil
}

const (
	nodeLabels   = "node.labels."
	engineLabels = "engine.labels."
)

// ipMatches reports whether addr, a node's address, is want (an address)
// or within it (a CIDR subnet). swarmkit places a task whose node.ip is
// neither on no node, so that is an error here.
func ipMatches(want, addr string) (bool, error) {
	ip := net.ParseIP(addr)
	if w := net.ParseIP(want); w != nil {
		return w.Equal(ip), nil
	}
	if _, subnet, err := net.ParseCIDR(want); err == nil {
		return subnet.Contains(ip), nil
	}
	return false, fmt.Errorf("%q is neither an IP address nor a CIDR subnet: Swarm places the task on no node", want)
}
