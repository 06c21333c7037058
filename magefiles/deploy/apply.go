package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// AuthFunc returns the X-Registry-Auth value the engine pulls image with.
type AuthFunc func(ctx context.Context, image string) (string, error)

// Applied is what an apply changed, kept so that it can be undone: the
// spec each touched service had before (nil for one it created).
type Applied struct {
	Kept    map[string]*swarm.ServiceSpec
	IDs     map[string]string // service IDs by name
	Watches []Watch
}

// Names are the services the apply touched, sorted.
func (a *Applied) Names() []string { return slices.Sorted(maps.Keys(a.Kept)) }

// ApplyObjects creates the networks and configs the plan needs. They are
// not undone on failure: nothing uses them but the services.
func ApplyObjects(ctx context.Context, api client.APIClient, p *Plan, out io.Writer) error {
	for _, name := range p.CreateNetworks {
		fmt.Fprintf(out, "  creating network %s\n", name)
		if _, err := api.NetworkCreate(ctx, name, p.networks[name]); err != nil {
			return fmt.Errorf("create network %s: %w", name, err)
		}
	}
	for _, name := range p.CreateConfigs {
		fmt.Fprintf(out, "  creating config %s\n", name)
		if _, err := api.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: p.configs[name]}); err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("create config %s: %w", name, err)
		}
	}
	return nil
}

// ApplyServices makes the service changes through the Engine API, all at
// once as docker stack deploy does, recording each in a as it goes: when
// it stops half-way, a holds what to restore. Its Watches are this call's.
func ApplyServices(ctx context.Context, api client.APIClient, stack string, changes []ServiceChange, live *Live, auth AuthFunc, a *Applied, out io.Writer) error {
	a.Watches = nil
	for _, c := range changes {
		full := stack + "_" + c.Name
		w := Watch{Name: c.Name, Rolling: c.Rolling}
		var err error
		switch c.Action {
		case Create:
			a.Kept[c.Name] = nil
			var r client.ServiceCreateResult
			r, err = createService(ctx, api, *c.New, auth)
			if err == nil {
				a.IDs[c.Name] = r.ID
				w.ID = r.ID
			}
		case Update:
			svc := live.Services[c.Name]
			a.Kept[c.Name], a.IDs[c.Name], w.ID = c.Old, svc.ID, svc.ID
			if w.Existing, err = taskIDs(ctx, api, svc.ID); err != nil {
				break
			}
			w.Before = startedAt(svc)
			err = updateService(ctx, api, svc.ID, svc.Version, *c.New, auth)
		case Remove:
			svc := live.Services[c.Name]
			a.Kept[c.Name], a.IDs[c.Name], w.ID, w.Gone = c.Old, svc.ID, svc.ID, true
			_, err = api.ServiceRemove(ctx, svc.ID, client.ServiceRemoveOptions{})
		default:
			continue
		}
		w.Applied = time.Now()
		if err != nil {
			return fmt.Errorf("%s service %s: %w", c.Action, full, err)
		}
		fmt.Fprintf(out, "  %s service %s\n", verb(c.Action), full)
		a.Watches = append(a.Watches, w)
	}
	return nil
}

// NewApplied starts an empty record of changes.
func NewApplied() *Applied {
	return &Applied{Kept: map[string]*swarm.ServiceSpec{}, IDs: map[string]string{}}
}

func verb(a Action) string {
	switch a {
	case Create:
		return "created"
	case Update:
		return "updated"
	case Remove:
		return "removed"
	}
	return string(a)
}

func createService(ctx context.Context, api client.APIClient, spec swarm.ServiceSpec, auth AuthFunc) (client.ServiceCreateResult, error) {
	a, err := auth(ctx, spec.TaskTemplate.ContainerSpec.Image)
	if err != nil {
		return client.ServiceCreateResult{}, err
	}
	return api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec, EncodedRegistryAuth: a})
}

func updateService(ctx context.Context, api client.APIClient, id string, version swarm.Version, spec swarm.ServiceSpec, auth AuthFunc) error {
	a, err := auth(ctx, spec.TaskTemplate.ContainerSpec.Image)
	if err != nil {
		return err
	}
	_, err = api.ServiceUpdate(ctx, id, client.ServiceUpdateOptions{Version: version, Spec: spec, EncodedRegistryAuth: a})
	return err
}

func startedAt(s swarm.Service) *time.Time {
	if s.UpdateStatus == nil || s.UpdateStatus.StartedAt == nil {
		return nil
	}
	t := *s.UpdateStatus.StartedAt
	return &t
}

func taskIDs(ctx context.Context, api client.APIClient, serviceID string) (map[string]bool, error) {
	ts, err := api.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID)})
	if err != nil {
		return nil, fmt.Errorf("tasks of service %s: %w", serviceID, err)
	}
	ids := map[string]bool{}
	for _, t := range ts.Items {
		ids[t.ID] = true
	}
	return ids, nil
}

// Restore puts every service an apply touched back to the spec it had
// before: services it created are removed, services it removed are made
// again, updated ones get their kept spec back. Swarm's own rollback is
// used when its one previous spec is the kept one; otherwise the kept spec
// is applied as an update. It then waits for all of them to converge.
func Restore(ctx context.Context, api client.APIClient, stack string, a *Applied, networkNames func(context.Context) (map[string]string, error), auth AuthFunc, o ConvergeOptions) error {
	names, err := networkNames(ctx)
	if err != nil {
		// Without them no live spec compares equal, so every service gets
		// its kept spec as an update: slower than Swarm's rollback, as right.
		fmt.Fprintf(o.Out, "  warning: %v; every service is restored by an update\n", err)
		names = map[string]string{}
	}
	var watches []Watch
	var errs []error
	for _, name := range a.Names() {
		kept := a.Kept[name]
		full := stack + "_" + name
		w := Watch{Name: name, Restore: true, Applied: time.Now()}
		id := a.IDs[name]
		if kept == nil {
			if id == "" {
				// The create failed or its answer was lost. Under the lock,
				// a service of that name can only be this change's.
				cur, err := api.ServiceInspect(ctx, full, client.ServiceInspectOptions{})
				if cerrdefs.IsNotFound(err) {
					continue
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("inspect %s: %w", full, err))
					continue
				}
				id = cur.Service.ID
			}
			fmt.Fprintf(o.Out, "  removing service %s, which this deploy created\n", full)
			if _, err := api.ServiceRemove(ctx, id, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove %s: %w", full, err))
				continue
			}
			w.ID, w.Gone = id, true
			watches = append(watches, w)
			continue
		}
		cur, err := api.ServiceInspect(ctx, full, client.ServiceInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			fmt.Fprintf(o.Out, "  creating service %s again from its kept spec\n", full)
			r, err := createService(ctx, api, *kept, auth)
			if err != nil {
				errs = append(errs, fmt.Errorf("create %s: %w", full, err))
				continue
			}
			w.ID = r.ID
		case err != nil:
			errs = append(errs, fmt.Errorf("inspect %s: %w", full, err))
			continue
		default:
			svc := cur.Service
			w.ID, w.Before = svc.ID, startedAt(svc)
			if w.Existing, err = taskIDs(ctx, api, svc.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			want := WithDefaults(*kept)
			want.TaskTemplate.ForceUpdate = svc.Spec.TaskTemplate.ForceUpdate
			switch {
			case sameJSON(normalize(svc.Spec, names), want):
				fmt.Fprintf(o.Out, "  %s already has its previous spec (Swarm rolled it back)\n", full)
			case svc.PreviousSpec != nil && sameJSON(normalize(*svc.PreviousSpec, names), want):
				fmt.Fprintf(o.Out, "  rolling %s back to its previous spec\n", full)
				// The engine wants a spec even when it takes the previous
				// one (an empty one is refused as a "mismatch").
				_, err = api.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Version, Spec: svc.Spec, Rollback: "previous"})
			default:
				fmt.Fprintf(o.Out, "  updating %s to its kept spec\n", full)
				err = updateService(ctx, api, svc.ID, svc.Version, want, auth)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("restore %s: %w", full, err))
				continue
			}
		}
		watches = append(watches, w)
	}
	if err := Converge(ctx, api, watches, o); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
