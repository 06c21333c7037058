package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
	"github.com/fractionate/service-template/magefiles/stack"
)

type nodeLister interface {
	NodeList(ctx context.Context, options client.NodeListOptions) (client.NodeListResult, error)
}

// Check is one line of a preflight: what was checked and, when it failed,
// what is wrong and how to fix it; or why it could not be checked.
type Check struct {
	Name    string
	OK      string // what was found, when it passed
	Err     error  // what is wrong and how to fix it
	Skipped string // why it was not checked (a check it needs failed)
}

// Checks is a preflight's result.
type Checks []Check

// Add records a check.
func (cs *Checks) Add(name string, ok string, err error) {
	*cs = append(*cs, Check{Name: name, OK: ok, Err: err})
}

// NotRun records a check that could not run, and why.
func (cs *Checks) NotRun(name, why string) { *cs = append(*cs, Check{Name: name, Skipped: why}) }

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

// Refusal is the short error a refused change ends with: the checks
// themselves were printed already.
func (cs Checks) Refusal(action string) error {
	n := 0
	var names []string
	for _, c := range cs {
		if c.Err != nil {
			n++
			names = append(names, c.Name)
		}
	}
	return Refused(fmt.Errorf("preflight refused the %s (%d check(s) failed: %s); nothing was changed", action, n, strings.Join(names, ", ")))
}

// Print writes one line per check.
func (cs Checks) Print(w io.Writer) {
	fmt.Fprintln(w, "Preflight:")
	for _, c := range cs {
		switch {
		case c.Err != nil:
			fmt.Fprintf(w, "  FAIL  %-10s %s\n", c.Name, strings.ReplaceAll(c.Err.Error(), "\n", "\n                   "))
		case c.Skipped != "":
			fmt.Fprintf(w, "  skip  %-10s %s\n", c.Name, c.Skipped)
		default:
			fmt.Fprintf(w, "  ok    %-10s %s\n", c.Name, c.OK)
		}
	}
}

// checkManager checks that the endpoint answers and is a Swarm manager,
// and returns the manager's clock.
func (s *Session) checkManager(ctx context.Context, cs *Checks) (time.Time, bool) {
	passed := ""
	if notes := s.failover(ctx); len(notes) > 0 {
		passed = "; passed over: " + strings.Join(notes, "; ")
	}
	info, err := s.API.Info(ctx, client.InfoOptions{})
	if err != nil {
		cs.Add("endpoint", "", fmt.Errorf("%w%s", endpoint.Unreachable(s.Env.Name, s.Endpoint, err), passed))
		cs.NotRun("swarm", "needs the endpoint")
		return time.Time{}, false
	}
	cs.Add("endpoint", fmt.Sprintf("%s answers (Docker %s)%s", s.Endpoint, info.Info.ServerVersion, passed), nil)
	sw := info.Info.Swarm
	if sw.LocalNodeState != swarm.LocalNodeStateActive || !sw.ControlAvailable {
		hint := "run deploys against a manager node"
		if sw.LocalNodeState == swarm.LocalNodeStateInactive {
			hint = "this engine is not in a Swarm; for the local environment run: go tool mage deploy:init local"
		}
		cs.Add("swarm", "", fmt.Errorf("%s is not a Swarm manager (node state %s): %s", s.Endpoint, sw.LocalNodeState, hint))
		return time.Time{}, false
	}
	id := ""
	if sw.Cluster != nil {
		id = sw.Cluster.ID
	}
	if sw.Error != "" {
		// What the manager could not read of its own Swarm: on a Swarm
		// without a leader, that it has none.
		cs.Add("swarm", "", quorumError(fmt.Errorf("the manager cannot read its Swarm: %s", sw.Error), short(id, 12), sw.Managers))
		return time.Time{}, false
	}
	// A manager answers for itself even when the Swarm has no leader; only
	// a call that needs the Raft store, or the managers' reachability,
	// tells. Nothing can change then.
	nodes, err := s.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		cs.Add("swarm", "", quorumError(fmt.Errorf("list the Swarm's nodes: %w", err), short(id, 12), sw.Managers))
		return time.Time{}, false
	}
	managers, reachable := 0, 0
	for _, n := range nodes.Items {
		if n.ManagerStatus != nil {
			managers++
			if n.ManagerStatus.Reachability == swarm.ReachabilityReachable {
				reachable++
			}
		}
	}
	if managers > 0 && reachable*2 <= managers {
		cs.Add("swarm", "", fmt.Errorf("the Swarm %s has lost quorum: %d of its %d managers are reachable, and it needs more than half; %s", short(id, 12), reachable, managers, quorumFix))
		return time.Time{}, false
	}
	cs.Add("swarm", fmt.Sprintf("manager of Swarm %s (%d managers, %d nodes)", short(id, 12), sw.Managers, sw.Nodes), nil)
	now, err := time.Parse(time.RFC3339Nano, info.Info.SystemTime)
	if err != nil {
		now = time.Now()
	}
	return now, true
}

// unknownNodesWait bounds how long the nodes check waits for nodes whose
// state is unknown: a manager that just became leader knows no node's
// state until each reports to it (seconds; more on a loaded machine).
var unknownNodesWait = 30 * time.Second

// listKnownNodes lists the nodes, waiting up to unknownNodesWait for any
// whose state is unknown to report.
func listKnownNodes(ctx context.Context, api nodeLister) ([]swarm.Node, error) {
	deadline := time.Now().Add(unknownNodesWait)
	for {
		ns, err := api.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		if !slices.ContainsFunc(ns.Items, func(n swarm.Node) bool { return n.Status.State == swarm.NodeStateUnknown }) || time.Now().After(deadline) {
			return ns.Items, nil
		}
		select {
		case <-ctx.Done():
			return ns.Items, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkNodes checks that nodes are ready and that each service's placement
// constraints match at least one of them.
func checkNodes(ctx context.Context, api nodeLister, services map[string]swarm.ServiceSpec, cs *Checks) {
	nodes, err := listKnownNodes(ctx, api)
	if err != nil {
		cs.Add("nodes", "", err)
		return
	}
	var ready []swarm.Node
	var down []string
	for _, n := range nodes {
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
			ok, unknown, err := converge.MatchConstraints(constraints, n)
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
	if len(errs) > 0 && len(down) > 0 {
		errs = append(errs, "not ready or not active: "+strings.Join(down, ", "))
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

// Swarm's own rules for names (swarmkit's manager/controlapi): a service or
// a network is a DNS label of at most 63 characters; a secret or a config
// at most 64 of letters, digits, '-', '_' and '.'. Checked before anything
// changes, not discovered half-way through applying.
var (
	dnsName    = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)
	objectName = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)
)

// nameProblem says what is wrong with a Swarm name of kind ("service",
// "network", "secret", "config"); "" when Swarm takes it.
func nameProblem(kind, name string) string {
	switch kind {
	case "service", "network":
		switch {
		case len(name) > 63:
			return fmt.Sprintf("%s name %s is %d characters; Swarm takes at most 63 (a DNS label): shorten the stack or the %s's name", kind, name, len(name), kind)
		case !dnsName.MatchString(name):
			return fmt.Sprintf("%s name %s is not a DNS label (letters and digits, '-' or '_' between them)", kind, name)
		}
	default:
		if len(name) > 64 || !objectName.MatchString(name) {
			return fmt.Sprintf("%s name %s: Swarm takes at most 64 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", kind, name)
		}
	}
	return ""
}

// checkNames checks every name the change will create or use in full:
// services and networks as <stack>_<name>, configs with their content hash
// and secrets as bound.
func checkNames(d *Desired, cs *Checks) {
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(d.Services)) {
		if p := nameProblem("service", d.Stack+"_"+name); p != "" {
			errs = append(errs, p)
		}
		if cspec := d.Services[name].TaskTemplate.ContainerSpec; cspec != nil {
			for _, r := range cspec.Secrets {
				if p := nameProblem("secret", r.SecretName); p != "" {
					errs = append(errs, p)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Networks)) {
		if p := nameProblem("network", name); p != "" {
			errs = append(errs, p)
		}
	}
	for _, c := range d.Configs {
		if p := nameProblem("config", c.Name); p != "" {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		cs.Add("names", "", errors.New(strings.Join(slices.Compact(errs), "; ")))
		return
	}
	cs.Add("names", fmt.Sprintf("%d service(s), %d network(s), %d config(s) fit Swarm's rules", len(d.Services), len(d.Networks), len(d.Configs)), nil)
}

// checkCollisions refuses a service the change would create whose full
// name another stack's service (or a service of no stack) has already:
// stack shop's api_worker and stack shop_api's worker are both
// shop_api_worker. Left alone, the create would fail half-way through, and
// a restore must never remove what is not this change's.
func checkCollisions(ctx context.Context, api serviceLister, d *Desired, live *Live, cs *Checks) {
	all, err := api.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		cs.Add("collisions", "", fmt.Errorf("list services: %w", err))
		return
	}
	taken := map[string]swarm.Service{}
	for _, s := range all.Items {
		taken[s.Spec.Name] = s
	}
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(d.Services)) {
		if _, ours := live.Services[name]; ours {
			continue
		}
		full := d.Stack + "_" + name
		if other, ok := taken[full]; ok {
			owner := "no stack"
			if st := other.Spec.Labels[StackLabel]; st != "" {
				owner = "stack " + st
			}
			errs = append(errs, fmt.Sprintf("service %s would be stack %s's %s, but a service of that name exists and belongs to %s: rename one of them", full, d.Stack, name, owner))
		}
	}
	if len(errs) > 0 {
		cs.Add("collisions", "", errors.New(strings.Join(errs, "; ")))
		return
	}
	cs.Add("collisions", "no other service has a name this change creates", nil)
}

type serviceLister interface {
	ServiceList(ctx context.Context, options client.ServiceListOptions) (client.ServiceListResult, error)
}

// checkNetworks refuses a stack whose files name an external network that
// does not exist: docker stack deploy would refuse it only half-way.
func checkNetworks(d *Desired, live *Live, cs *Checks) {
	var missing []string
	for _, n := range d.ExternalNetworks {
		if !live.Networks[n] {
			missing = append(missing, n)
		}
	}
	switch {
	case slices.Contains(missing, stack.ProxyNetwork):
		cs.Add("networks", "", fmt.Errorf("external network(s) %s do not exist: %s is the front proxy's; deploy it first: go tool mage deploy:proxy ENV (it makes the network)", strings.Join(missing, ", "), stack.ProxyNetwork))
	case len(missing) > 0:
		cs.Add("networks", "", fmt.Errorf("external network(s) %s do not exist: the stack files expect them made beforehand (docker network create --driver overlay --attachable NAME, or deploy:setup)", strings.Join(missing, ", ")))
	case len(d.ExternalNetworks) > 0:
		cs.Add("networks", "external "+strings.Join(d.ExternalNetworks, ", ")+" exist", nil)
	}
}

const quorumFix = "bring the managers back (or, with one surviving manager, run docker swarm init --force-new-cluster there); nothing can change until then"

// quorumError says plainly when err is a Swarm without a leader: its Raft
// store takes no write and may answer no read.
func quorumError(err error, swarmID string, managers int) error {
	msg := err.Error()
	// The last: a manager's own Raft store not answering within the
	// engine's bound on a Swarm request, as one without a leader does.
	for _, s := range []string{"does not have a leader", "no elected cluster leader", "lost leader status", "raft: failed to process the request", "code = DeadlineExceeded"} {
		if strings.Contains(msg, s) {
			of := "its managers"
			if managers > 0 {
				of = fmt.Sprintf("its %d managers", managers)
			}
			which := "the Swarm"
			if swarmID != "" {
				which += " " + swarmID
			}
			return fmt.Errorf("%s has lost quorum: it has no leader, so more than half of %s are unreachable (%w); %s", which, of, err, quorumFix)
		}
	}
	return err
}
