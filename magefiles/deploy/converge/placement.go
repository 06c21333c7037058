package converge

import (
	"fmt"
	"net"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

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

// Eligible reports whether n can run a task of spec: ready, active, and
// matching its placement constraints (a constraint this code does not know
// counts as met: Swarm may know it).
func Eligible(spec swarm.ServiceSpec, n swarm.Node) bool {
	if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
		return false
	}
	var constraints []string
	if p := spec.TaskTemplate.Placement; p != nil {
		constraints = p.Constraints
	}
	ok, _, err := MatchConstraints(constraints, n)
	return ok && err == nil
}
