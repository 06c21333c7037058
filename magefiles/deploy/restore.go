package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/converge"
)

// restoreKind is the way back for one touched service.
type restoreKind int

const (
	restoreNothing  restoreKind = iota // it runs its kept spec already: Swarm rolled it back
	restoreRollback                    // Swarm's own rollback: its one previous spec is the kept one
	restoreUpdate                      // an update to the kept spec
	restoreCreate                      // the change removed it (or it is gone): made again from its kept spec
	restoreRemove                      // the change created it: removed
	restoreGone                        // the change created it, and it is gone already
	restoreLeave                       // a service of that name that this change did not create: left alone
)

// restoreStep is what the restore does to one service.
type restoreStep struct {
	Name string
	Kind restoreKind
	Svc  swarm.Service     // as it is now (for an update, a rollback, a remove)
	Spec swarm.ServiceSpec // what it goes back to (an update, a create)
}

// planRestore decides, per service a changed, the way back to its kept
// spec, from the services as they are now (current; one absent is gone).
// It is pure: the choices are a table test, the calls are restore's.
func planRestore(a *Applied, current map[string]swarm.Service, networkNames map[string]string) []restoreStep {
	var steps []restoreStep
	for _, name := range a.Names() {
		kept := a.Kept[name]
		svc, exists := current[name]
		step := restoreStep{Name: name, Svc: svc}
		switch {
		case kept == nil && !exists:
			step.Kind = restoreGone
		case kept == nil:
			// Removed only when it is provably this change's: the ID the
			// create answered, or, when that answer was lost, the label
			// the create put on it. Another stack's service of the same
			// name is never touched.
			step.Kind = restoreLeave
			if (a.IDs[name] != "" && svc.ID == a.IDs[name]) || svc.Spec.Labels[ownerLabel] == a.ChangeID {
				step.Kind = restoreRemove
			}
		case !exists:
			step.Kind, step.Spec = restoreCreate, *kept
		default:
			want := withDefaults(*kept)
			want.TaskTemplate.ForceUpdate = svc.Spec.TaskTemplate.ForceUpdate
			step.Spec = want
			switch {
			case sameJSON(normalize(svc.Spec, networkNames), want):
				step.Kind = restoreNothing
			case svc.PreviousSpec != nil && sameJSON(normalize(*svc.PreviousSpec, networkNames), want):
				step.Kind = restoreRollback
			default:
				step.Kind = restoreUpdate
			}
		}
		steps = append(steps, step)
	}
	return steps
}

// restoreAPI is what a restore calls.
type restoreAPI interface {
	converge.Observer
	serviceCreator
	serviceUpdater
	ServiceRemove(ctx context.Context, serviceID string, options client.ServiceRemoveOptions) (client.ServiceRemoveResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
}

// restore puts every service a changed back to the spec it had before and
// waits for that, in a context of its own: it outlives a first Ctrl-C,
// ends on a second, and is bounded by the deadline.
func (s *Session) restore(a *Applied) error {
	ctx, cancel := context.WithTimeout(s.bg(), s.Env.Deadline+time.Minute)
	defer cancel()
	return restore(ctx, s.API, s.Env.Stack, a, s.Auth, converge.Options{Deadline: s.Env.Deadline, Poll: s.Poll, Out: s.Out})
}

func restore(ctx context.Context, api restoreAPI, stack string, a *Applied, auth authFunc, o converge.Options) error {
	names, err := networkIDs(ctx, api)
	if err != nil {
		// Without them no live spec compares equal, so every service gets
		// its kept spec as an update: slower than Swarm's rollback, as right.
		fmt.Fprintf(o.Out, "  warning: %v; every service is restored by an update\n", err)
	}
	var errs []error
	current := map[string]swarm.Service{}
	for _, name := range a.Names() {
		r, err := api.ServiceInspect(ctx, stack+"_"+name, client.ServiceInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("inspect %s_%s: %w", stack, name, err))
		default:
			current[name] = r.Service
		}
	}
	var watches []converge.Watch
	for _, step := range planRestore(a, current, names) {
		full := stack + "_" + step.Name
		w := converge.Watch{Name: step.Name, Restore: true, Applied: time.Now(), ID: step.Svc.ID, Before: startedAt(step.Svc)}
		var err error
		switch step.Kind {
		case restoreGone:
			continue
		case restoreLeave:
			fmt.Fprintf(o.Out, "  leaving service %s alone: this change did not create it\n", full)
			continue
		case restoreRemove:
			fmt.Fprintf(o.Out, "  removing service %s, which this change created\n", full)
			if _, err = api.ServiceRemove(ctx, step.Svc.ID, client.ServiceRemoveOptions{}); cerrdefs.IsNotFound(err) {
				err = nil
			}
			w.Gone = true
		case restoreCreate:
			fmt.Fprintf(o.Out, "  creating service %s again from its kept spec\n", full)
			var r client.ServiceCreateResult
			r, err = createService(ctx, api, step.Spec, auth)
			w.ID = r.ID
		case restoreNothing:
			fmt.Fprintf(o.Out, "  %s already has its previous spec (Swarm rolled it back)\n", full)
		case restoreRollback:
			fmt.Fprintf(o.Out, "  rolling %s back to its previous spec\n", full)
			if w.Existing, err = taskIDs(ctx, api, step.Svc.ID); err == nil {
				// The engine wants a spec even when it takes the previous
				// one (an empty one is refused as a "mismatch").
				_, err = api.ServiceUpdate(ctx, step.Svc.ID, client.ServiceUpdateOptions{Version: step.Svc.Version, Spec: step.Svc.Spec, Rollback: "previous"})
			}
		case restoreUpdate:
			fmt.Fprintf(o.Out, "  updating %s to its kept spec\n", full)
			if w.Existing, err = taskIDs(ctx, api, step.Svc.ID); err == nil {
				err = updateService(ctx, api, step.Svc, step.Spec, auth)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", full, err))
			continue
		}
		watches = append(watches, w)
	}
	if err := converge.Wait(ctx, api, watches, o); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type networkListerAPI interface {
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
}

// networkIDs maps every network's ID to its name.
func networkIDs(ctx context.Context, api networkListerAPI) (map[string]string, error) {
	ns, err := api.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return map[string]string{}, fmt.Errorf("list networks: %w", err)
	}
	names := map[string]string{}
	for _, n := range ns.Items {
		names[n.ID] = n.Name
	}
	return names, nil
}

// printState says where each touched service stands after a failed restore.
func (s *Session) printState(a *Applied) {
	ctx, cancel := s.cleanup()
	defer cancel()
	fmt.Fprintln(s.Out, "State of the services this change touched:")
	for _, name := range a.Names() {
		obs, err := converge.Observe(ctx, s.API, s.Env.Stack+"_"+name)
		if err != nil {
			fmt.Fprintf(s.Out, "  %s: %v\n", name, err)
			continue
		}
		if obs.Gone {
			fmt.Fprintf(s.Out, "  %s: does not exist\n", name)
			continue
		}
		p := converge.Evaluate(converge.Watch{Name: name, Restore: true}, obs)
		fmt.Fprintf(s.Out, "  %s, image %s\n", p.Line, ImageOf(obs.Service.Spec).Short())
	}
}
