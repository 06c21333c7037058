package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Scale sets the replicas of one service, through the same pipeline as a
// deploy: lock, plan, convergence, restore on failure, record.
func (d *Deployer) Scale(ctx context.Context, service string, replicas int, dryRun bool) error {
	start := time.Now()
	if replicas < 0 {
		return Refused(fmt.Errorf("replicas %d: want 0 or more", replicas))
	}
	if replicas > d.Env.MaxReplicas {
		return Refused(fmt.Errorf("replicas %d: environment %s allows at most %d (max_replicas in %s)", replicas, d.Env.Name, d.Env.MaxReplicas, EnvironmentsFile))
	}
	fmt.Fprintf(d.Out, "Scaling %s in %s (stack %s) through %s\n", service, d.Env.Name, d.Env.Stack, d.Endpoint)
	var cs Checks
	if !checkManager(ctx, d.API, d.Endpoint, &cs) {
		cs.Print(d.Out)
		return Refused(cs.Err())
	}
	return d.run(ctx, start, &cs, "scale", dryRun, "", func(live *Live, cs *Checks) (*Desired, Release, int, error) {
		svc, ok := live.Services[service]
		if !ok {
			err := fmt.Errorf("stack %s has no service %q; it has: %s", d.Env.Stack, service, strings.Join(slices.Sorted(maps.Keys(live.Services)), ", "))
			cs.Add("service", "", err)
			return nil, Release{}, 0, nil
		}
		if svc.Spec.Mode.Replicated == nil || svc.Spec.Mode.Replicated.Replicas == nil {
			cs.Add("service", "", fmt.Errorf("%s is not a replicated service (mode global or job): it cannot be scaled", service))
			return nil, Release{}, 0, nil
		}
		before := *svc.Spec.Mode.Replicated.Replicas
		cs.Add("service", fmt.Sprintf("%s: %d -> %d replicas", service, before, replicas), nil)
		desired := &Desired{Stack: d.Env.Stack, Services: map[string]swarm.ServiceSpec{}}
		for name := range live.Services {
			desired.Services[name] = live.Spec(name)
		}
		spec := desired.Services[service]
		mode := *spec.Mode.Replicated
		n := uint64(replicas) //nolint:gosec // checked: 0 <= replicas <= MaxReplicas
		mode.Replicas = &n
		spec.Mode.Replicated = &mode
		desired.Services[service] = spec
		return desired, Release{}, 0, nil
	})
}
