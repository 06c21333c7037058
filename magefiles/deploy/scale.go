package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// Scale sets the replicas of one service, through the same pipeline as a
// deploy: lock, plan, convergence, restore on failure, record.
func (s *Session) Scale(ctx context.Context, service string, replicas int, dryRun bool) error {
	c := Change{Action: ledger.Scale, What: fmt.Sprintf("%s at %d replica(s)", service, replicas), DryRun: dryRun}
	c.Offline = func(cs *Checks) {
		switch {
		case replicas < 0:
			cs.Add("replicas", "", fmt.Errorf("%d: want 0 or more", replicas))
		case replicas > s.Env.MaxReplicas:
			cs.Add("replicas", "", fmt.Errorf("%d: environment %s allows at most %d (max_replicas in %s)", replicas, s.Env.Name, s.Env.MaxReplicas, envfile.DefaultPath))
		default:
			cs.Add("replicas", fmt.Sprintf("%d, within max_replicas %d", replicas, s.Env.MaxReplicas), nil)
		}
	}
	c.Prepare = func(_ context.Context, live *Live, cs *Checks) *Target {
		svc, ok := live.Services[service]
		if !ok {
			cs.Add("service", "", noService(s.Env, service, slices.Sorted(maps.Keys(live.Services))))
			return nil
		}
		if svc.Spec.Mode.Replicated == nil || svc.Spec.Mode.Replicated.Replicas == nil {
			cs.Add("service", "", fmt.Errorf("%s is not a replicated service (mode global or job): it cannot be scaled", service))
			return nil
		}
		if cs.Failed() {
			return nil
		}
		before := *svc.Spec.Mode.Replicated.Replicas
		cs.Add("service", fmt.Sprintf("%s: %d -> %d replicas", service, before, replicas), nil)
		desired := &Desired{Stack: s.Env.Stack, Services: map[string]swarm.ServiceSpec{}}
		for name := range live.Services {
			desired.Services[name] = live.Spec(name)
		}
		spec := desired.Services[service]
		mode := *spec.Mode.Replicated
		n := uint64(replicas) //nolint:gosec // checked: 0 <= replicas <= MaxReplicas
		mode.Replicas = &n
		spec.Mode.Replicated = &mode
		desired.Services[service] = spec
		return &Target{Desired: desired}
	}
	return s.Run(ctx, c)
}
