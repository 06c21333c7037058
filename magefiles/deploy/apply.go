package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// authFunc returns the X-Registry-Auth value the engine pulls image with.
type authFunc func(ctx context.Context, image string) (string, error)

// ownerLabel marks a service with the change that created it: a restore
// removes a service only when it proves to be that change's. The plan's
// diff ignores it.
const ownerLabel = ledger.LabelPrefix + "change"

// Applied is what an apply changed, kept so that it can be undone: the
// spec each touched service had before (nil for one it created).
type Applied struct {
	ChangeID string // the ownerLabel of the services it creates
	Kept     map[string]*swarm.ServiceSpec
	IDs      map[string]string // service IDs by name
	Watches  []converge.Watch
}

// newApplied starts an empty record of a change's changes.
func newApplied(changeID string) *Applied {
	return &Applied{ChangeID: changeID, Kept: map[string]*swarm.ServiceSpec{}, IDs: map[string]string{}}
}

// Names are the services the apply touched, sorted.
func (a *Applied) Names() []string { return slices.Sorted(maps.Keys(a.Kept)) }

// Changed reports whether the apply touched a service (or may have: a
// create whose answer was lost counts).
func (a *Applied) Changed() bool { return len(a.Kept) > 0 }

// apply makes the plan's changes in the order a release needs: networks
// and configs; then the services that do not run the release's image (the
// database, say), converged; then the release's migrations, once, as a
// job; then the services that run the release, converged; then the smoke
// check. On an error, applied holds everything changed so far.
func (s *Session) apply(ctx context.Context, plan *Plan, live *Live, applied *Applied, migrate bool, want string, rec *ledger.Record) error {
	if err := s.applyObjects(ctx, plan); err != nil {
		return err
	}
	deps, app := splitByImage(plan.Touched(), s.Env.Image)
	co := converge.Options{Deadline: s.Env.Deadline, Poll: s.Poll, Out: s.Out}
	phase := func(changes []ServiceChange) error {
		if len(changes) == 0 {
			return nil
		}
		if err := s.applyServices(ctx, plan.Stack, changes, live, applied); err != nil {
			return err
		}
		fmt.Fprintf(s.Out, "Waiting for %d service(s) to converge (deadline %s):\n", len(applied.Watches), s.Env.Deadline)
		err := converge.Wait(ctx, s.API, applied.Watches, co)
		var nf *converge.NodeFaultError
		if errors.As(err, &nf) {
			err = s.updateAgain(ctx, nf, changes, applied, co)
		}
		return err
	}
	if err := phase(deps); err != nil {
		return err
	}
	if base, ok := migrationBase(app, s.Env.Image); ok && migrate {
		if err := s.migrate(ctx, plan, base); err != nil {
			return err
		}
	}
	if err := phase(app); err != nil {
		return err
	}
	if s.AfterConverge != nil {
		return s.AfterConverge(ctx)
	}
	if s.Env.Smoke == nil {
		return nil
	}
	specs := map[string]swarm.ServiceSpec{}
	for _, c := range plan.Services {
		if c.New != nil {
			specs[c.Name] = *c.New
		}
	}
	if why := nothingToSmoke(s.Env.Smoke, specs, s.Env.Image); why != "" {
		fmt.Fprintf(s.Out, "Smoke check skipped: %s.\n", why)
		rec.Smoke = ledger.SmokeSkipped
		return nil
	}
	if err := s.smokeCheck(ctx, specs, want); err != nil {
		return err
	}
	rec.Smoke = ledger.SmokePassed
	return nil
}

// updateAgain is a change Swarm rolled back for a node's sake (the task it
// blamed was on a node drained or lost mid-update), not the release's: it
// waits for that rollback, sends the same update once more, and waits for
// the phase again. An update that stalled on a lost node's task, which
// Swarm neither finishes nor rolls back, is first rolled back here: a new
// update is the only thing that ends Swarm's wait. An update Swarm
// completed with a slot run twice gets its own spec again, which makes
// Swarm's updater stop the extra task. A second failure stands.
func (s *Session) updateAgain(ctx context.Context, nf *converge.NodeFaultError, changes []ServiceChange, applied *Applied, co converge.Options) error {
	i := slices.IndexFunc(changes, func(c ServiceChange) bool { return c.Name == nf.Watch.Name })
	again := i >= 0 && changes[i].Action == Update
	if nf.Surplus {
		fmt.Fprintf(s.Out, "Swarm completed the update of %s but runs a slot twice: sending the same spec again, which makes it stop the extra task\n", nf.Watch.Name)
		r, err := s.API.ServiceInspect(ctx, nf.Watch.ID, client.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("%w; then: inspect %s: %w", nf, nf.Watch.Name, err)
		}
		return s.sendAgain(ctx, nf, r.Service, r.Service.Spec, applied, co)
	}
	back := converge.Watch{Name: nf.Watch.Name, ID: nf.Watch.ID, Restore: true}
	if nf.Stalled {
		if !again {
			return nf // a created service: the restore removes it
		}
		fmt.Fprintf(s.Out, "Swarm's update of %s stalled for a node's sake, not the release's (%s): rolling it back, then updating again\n", nf.Watch.Name, nf.Why)
		var err error
		if back.Existing, err = taskIDs(ctx, s.API, nf.Watch.ID); err != nil {
			return fmt.Errorf("%w; then: %w", nf, err)
		}
		r, err := s.API.ServiceInspect(ctx, nf.Watch.ID, client.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("%w; then: inspect %s: %w", nf, nf.Watch.Name, err)
		}
		// The engine wants a spec even when it takes the previous one.
		if _, err := s.API.ServiceUpdate(ctx, nf.Watch.ID, client.ServiceUpdateOptions{Version: r.Service.Version, Spec: r.Service.Spec, Rollback: "previous"}); err != nil {
			return fmt.Errorf("%w; then the rollback: %w", nf, err)
		}
	} else {
		fmt.Fprintf(s.Out, "Swarm rolled %s back for a node's sake, not the release's (%s): letting the rollback finish, then updating again\n", nf.Watch.Name, nf.Why)
	}
	back.Applied = time.Now()
	if err := converge.Wait(ctx, s.API, []converge.Watch{back}, co); err != nil {
		return fmt.Errorf("%w; then the rollback did not finish: %w", nf, err)
	}
	if !again {
		return nf
	}
	r, err := s.API.ServiceInspect(ctx, nf.Watch.ID, client.ServiceInspectOptions{})
	if err != nil {
		return fmt.Errorf("%w; then: inspect %s: %w", nf, nf.Watch.Name, err)
	}
	return s.sendAgain(ctx, nf, r.Service, *changes[i].New, applied, co)
}

// sendAgain updates svc to spec once more for nf's sake and waits for the
// phase's services again, watching svc anew.
func (s *Session) sendAgain(ctx context.Context, nf *converge.NodeFaultError, svc swarm.Service, spec swarm.ServiceSpec, applied *Applied, co converge.Options) error {
	w := converge.Watch{Name: nf.Watch.Name, ID: nf.Watch.ID, Rolling: true, Before: startedAt(svc)}
	var err error
	if w.Existing, err = taskIDs(ctx, s.API, nf.Watch.ID); err != nil {
		return fmt.Errorf("%w; then: %w", nf, err)
	}
	if err := updateService(ctx, s.API, svc, spec, s.Auth); err != nil {
		return fmt.Errorf("%w; then the update again: %w", nf, err)
	}
	w.Applied = time.Now()
	fmt.Fprintf(s.Out, "  updated service %s_%s again\n", s.Env.Stack, nf.Watch.Name)
	for j := range applied.Watches {
		if applied.Watches[j].Name == w.Name {
			applied.Watches[j] = w
		}
	}
	return converge.Wait(ctx, s.API, applied.Watches, co)
}

// applyObjects creates the networks and configs the plan needs. They are
// not undone on failure: nothing uses them but the services.
func (s *Session) applyObjects(ctx context.Context, p *Plan) error {
	for _, name := range p.CreateNetworks {
		fmt.Fprintf(s.Out, "  creating network %s\n", name)
		if _, err := s.API.NetworkCreate(ctx, name, p.networks[name]); err != nil {
			return fmt.Errorf("create network %s: %w", name, err)
		}
	}
	for _, name := range p.CreateConfigs {
		fmt.Fprintf(s.Out, "  creating config %s\n", name)
		if _, err := s.API.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: p.configs[name]}); err != nil && !cerrdefs.IsConflict(err) {
			return fmt.Errorf("create config %s: %w", name, err)
		}
	}
	return nil
}

// applyServices makes the service changes through the Engine API, all at
// once as docker stack deploy does, recording each in a as it goes: when
// it stops half-way, a holds what to restore. Its Watches are this call's.
func (s *Session) applyServices(ctx context.Context, stack string, changes []ServiceChange, live *Live, a *Applied) error {
	a.Watches = nil
	for _, c := range changes {
		full := stack + "_" + c.Name
		w := converge.Watch{Name: c.Name, Rolling: c.Rolling}
		var err error
		switch c.Action {
		case Create:
			a.Kept[c.Name] = nil
			var r client.ServiceCreateResult
			r, err = createService(ctx, s.API, owned(*c.New, a.ChangeID), s.Auth)
			if err == nil {
				a.IDs[c.Name] = r.ID
				w.ID = r.ID
			}
		case Update:
			svc := live.Services[c.Name]
			a.Kept[c.Name], a.IDs[c.Name], w.ID = c.Old, svc.ID, svc.ID
			if w.Existing, err = taskIDs(ctx, s.API, svc.ID); err != nil {
				break
			}
			w.Before = startedAt(svc)
			err = updateService(ctx, s.API, svc, *c.New, s.Auth)
		case Remove:
			svc := live.Services[c.Name]
			a.Kept[c.Name], a.IDs[c.Name], w.ID, w.Gone = c.Old, svc.ID, svc.ID, true
			_, err = s.API.ServiceRemove(ctx, svc.ID, client.ServiceRemoveOptions{})
		default:
			continue
		}
		w.Applied = time.Now()
		if err != nil {
			return fmt.Errorf("%s service %s: %w", c.Action, full, err)
		}
		fmt.Fprintf(s.Out, "  %s service %s\n", verb(c.Action), full)
		a.Watches = append(a.Watches, w)
	}
	return nil
}

// owned is spec labelled as made by change.
func owned(spec swarm.ServiceSpec, change string) swarm.ServiceSpec {
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ownerLabel] = change
	spec.Labels = labels
	return spec
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

type serviceCreator interface {
	ServiceCreate(ctx context.Context, options client.ServiceCreateOptions) (client.ServiceCreateResult, error)
}

func createService(ctx context.Context, api serviceCreator, spec swarm.ServiceSpec, auth authFunc) (client.ServiceCreateResult, error) {
	a, err := auth(ctx, spec.TaskTemplate.ContainerSpec.Image)
	if err != nil {
		return client.ServiceCreateResult{}, err
	}
	return api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec, EncodedRegistryAuth: a})
}

type serviceUpdater interface {
	ServiceUpdate(ctx context.Context, serviceID string, options client.ServiceUpdateOptions) (client.ServiceUpdateResult, error)
	ServiceInspect(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (client.ServiceInspectResult, error)
}

// updateService sends spec as svc's new spec, at the version svc was read
// at. Swarm moves a service's version when it writes the service's update
// status (an earlier update finishing after svc was read, say): when only
// the version moved, the update is sent once more at the new one; when the
// spec moved too, someone else changed the service, and Swarm's refusal
// stands.
func updateService(ctx context.Context, api serviceUpdater, svc swarm.Service, spec swarm.ServiceSpec, auth authFunc) error {
	a, err := auth(ctx, spec.TaskTemplate.ContainerSpec.Image)
	if err != nil {
		return err
	}
	o := client.ServiceUpdateOptions{Version: svc.Version, Spec: spec, EncodedRegistryAuth: a}
	_, err = api.ServiceUpdate(ctx, svc.ID, o)
	if err == nil || !strings.Contains(err.Error(), "update out of sequence") {
		return err
	}
	now, ierr := api.ServiceInspect(ctx, svc.ID, client.ServiceInspectOptions{})
	if ierr != nil || !reflect.DeepEqual(now.Service.Spec, svc.Spec) {
		return err
	}
	o.Version = now.Service.Version
	_, err = api.ServiceUpdate(ctx, svc.ID, o)
	return err
}

func startedAt(s swarm.Service) *time.Time {
	if s.UpdateStatus == nil || s.UpdateStatus.StartedAt == nil {
		return nil
	}
	t := *s.UpdateStatus.StartedAt
	return &t
}

type taskLister interface {
	TaskList(ctx context.Context, options client.TaskListOptions) (client.TaskListResult, error)
}

func taskIDs(ctx context.Context, api taskLister, serviceID string) (map[string]bool, error) {
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

// splitByImage parts changes into those of services that do not run the
// release's repository (the database, say) and those that do.
func splitByImage(changes []ServiceChange, repo string) (deps, app []ServiceChange) {
	for _, c := range changes {
		if runsImage(c, repo) {
			app = append(app, c)
		} else {
			deps = append(deps, c)
		}
	}
	return deps, app
}

// runsImage reports whether a change concerns a service of the release's
// repository, before or after.
func runsImage(c ServiceChange, repo string) bool {
	for _, s := range []*swarm.ServiceSpec{c.Old, c.New} {
		if s != nil && ImageOf(*s).Repository == repo {
			return true
		}
	}
	return false
}

// expectedVersion is what the release's /version must report: the version
// the build stamped into the image (its org.opencontainers.image.version
// label), which is also what the service reports; the tag when the
// registry cannot say.
func (s *Session) expectedVersion(ctx context.Context, desired *Desired, tag string) string {
	if s.Env.Smoke == nil {
		return tag
	}
	if _, dg := appRelease(desired, s.Env.Image); dg != "" {
		if v, err := s.Registry.Version(ctx, s.Env.Image+"@"+dg); err == nil && v != "" {
			return v
		}
	}
	return tag
}

func records(d *Desired) map[string]ledger.ServiceRecord {
	out := map[string]ledger.ServiceRecord{}
	for name, spec := range d.Services {
		r := ledger.ServiceRecord{Image: spec.TaskTemplate.ContainerSpec.Image, Spec: spec}
		if spec.Mode.Replicated != nil {
			r.Replicas = spec.Mode.Replicated.Replicas
		}
		out[name] = r
	}
	return out
}

// appRelease is the version and digest of the first service running the
// environment's image.
func appRelease(d *Desired, repo string) (string, string) {
	for _, name := range slices.Sorted(maps.Keys(d.Services)) {
		img := ImageOf(d.Services[name])
		if img.Repository == repo {
			return img.Tag, img.Digest
		}
	}
	return "", ""
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func shortDigest(d string) string { return ledger.ShortDigest(d) }

func titleCase(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "...")
	}
	return s
}
