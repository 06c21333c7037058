package deploy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeSwarm is the part of the Engine API the unit tests need: configs
// (records and the lock) and secrets, kept in memory with the engine's
// conflict and not-found semantics. Any other call panics through the nil
// embedded interface: a test that reaches one is testing the wrong thing.
type fakeSwarm struct {
	client.APIClient
	mu      sync.Mutex
	n       int
	configs map[string]swarm.Config // by ID
	secrets []swarm.Secret
}

func newFakeSwarm() *fakeSwarm { return &fakeSwarm{configs: map[string]swarm.Config{}} }

func (f *fakeSwarm) ConfigCreate(_ context.Context, o client.ConfigCreateOptions) (client.ConfigCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.configs {
		if c.Spec.Name == o.Spec.Name {
			return client.ConfigCreateResult{}, cerrdefs.ErrConflict.WithMessage("config " + o.Spec.Name + " already exists")
		}
	}
	f.n++
	id := "cfg" + strconv.Itoa(f.n)
	f.configs[id] = swarm.Config{ID: id, Meta: swarm.Meta{CreatedAt: time.Now()}, Spec: o.Spec}
	return client.ConfigCreateResult{ID: id}, nil
}

func (f *fakeSwarm) find(idOrName string) (swarm.Config, bool) {
	if c, ok := f.configs[idOrName]; ok {
		return c, true
	}
	for _, c := range f.configs {
		if c.Spec.Name == idOrName {
			return c, true
		}
	}
	return swarm.Config{}, false
}

func (f *fakeSwarm) ConfigInspect(_ context.Context, id string, _ client.ConfigInspectOptions) (client.ConfigInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.find(id)
	if !ok {
		return client.ConfigInspectResult{}, cerrdefs.ErrNotFound.WithMessage("config " + id + " not found")
	}
	return client.ConfigInspectResult{Config: c}, nil
}

func (f *fakeSwarm) ConfigRemove(_ context.Context, id string, _ client.ConfigRemoveOptions) (client.ConfigRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.find(id)
	if !ok {
		return client.ConfigRemoveResult{}, cerrdefs.ErrNotFound.WithMessage("config " + id + " not found")
	}
	delete(f.configs, c.ID)
	return client.ConfigRemoveResult{}, nil
}

// ConfigList honours label filters of the form key=value, as the engine
// does; like the engine, it leaves the data out.
func (f *fakeSwarm) ConfigList(_ context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var labels []string
	for k := range o.Filters["label"] {
		labels = append(labels, k)
	}
	var out []swarm.Config
next:
	for _, c := range f.configs {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if c.Spec.Labels[k] != v {
				continue next
			}
		}
		c.Spec.Data = nil
		out = append(out, c)
	}
	return client.ConfigListResult{Items: out}, nil
}

// SecretList honours name filters and label filters of the form
// key=value, as the engine does; like the engine, it leaves the data out.
func (f *fakeSwarm) SecretList(_ context.Context, o client.SecretListOptions) (client.SecretListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := o.Filters["name"]
	var out []swarm.Secret
next:
	for _, s := range f.secrets {
		if len(names) > 0 && !names[s.Spec.Name] {
			continue
		}
		for l := range o.Filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			if s.Spec.Labels[k] != v {
				continue next
			}
		}
		s.Spec.Data = nil
		out = append(out, s)
	}
	return client.SecretListResult{Items: out}, nil
}

func (f *fakeSwarm) SecretCreate(_ context.Context, o client.SecretCreateOptions) (client.SecretCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.secrets {
		if s.Spec.Name == o.Spec.Name {
			return client.SecretCreateResult{}, cerrdefs.ErrConflict.WithMessage("secret " + o.Spec.Name + " already exists")
		}
	}
	f.n++
	id := "sec" + strconv.Itoa(f.n)
	f.secrets = append(f.secrets, swarm.Secret{ID: id, Meta: swarm.Meta{CreatedAt: time.Now()}, Spec: o.Spec})
	return client.SecretCreateResult{ID: id}, nil
}

func (f *fakeSwarm) SecretRemove(_ context.Context, id string, _ client.SecretRemoveOptions) (client.SecretRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.secrets {
		if s.ID == id || s.Spec.Name == id {
			f.secrets = slices.Delete(f.secrets, i, i+1)
			return client.SecretRemoveResult{}, nil
		}
	}
	return client.SecretRemoveResult{}, cerrdefs.ErrNotFound.WithMessage("secret " + id + " not found")
}

func (f *fakeSwarm) ConfigsNamed(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.configs {
		if strings.HasPrefix(c.Spec.Name, prefix) {
			out = append(out, c.Spec.Name)
		}
	}
	return out
}

// fakeServices adds services to fakeSwarm: enough for Restore, recording
// every change it is asked for.
type fakeServices struct {
	*fakeSwarm
	services map[string]swarm.Service // by name
	calls    []string
}

func (f *fakeServices) ServiceInspect(_ context.Context, id string, _ client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	for _, s := range f.services {
		if s.ID == id || s.Spec.Name == id {
			return client.ServiceInspectResult{Service: s}, nil
		}
	}
	return client.ServiceInspectResult{}, cerrdefs.ErrNotFound.WithMessage("service " + id + " not found")
}

func (f *fakeServices) ServiceUpdate(_ context.Context, id string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	if o.Spec.Name == "" {
		return client.ServiceUpdateResult{}, fmt.Errorf("mismatch") // what the engine says to an empty spec
	}
	f.calls = append(f.calls, fmt.Sprintf("update %s rollback=%q image=%s", o.Spec.Name, o.Rollback, o.Spec.TaskTemplate.ContainerSpec.Image))
	return client.ServiceUpdateResult{}, nil
}

func (f *fakeServices) ServiceCreate(_ context.Context, o client.ServiceCreateOptions) (client.ServiceCreateResult, error) {
	f.calls = append(f.calls, "create "+o.Spec.Name)
	f.services[o.Spec.Name] = swarm.Service{ID: "new-" + o.Spec.Name, Spec: o.Spec}
	return client.ServiceCreateResult{ID: "new-" + o.Spec.Name}, nil
}

func (f *fakeServices) ServiceRemove(_ context.Context, id string, _ client.ServiceRemoveOptions) (client.ServiceRemoveResult, error) {
	f.calls = append(f.calls, "remove "+id)
	for name, s := range f.services {
		if s.ID == id {
			delete(f.services, name)
		}
	}
	return client.ServiceRemoveResult{}, nil
}

func (f *fakeServices) TaskList(context.Context, client.TaskListOptions) (client.TaskListResult, error) {
	return client.TaskListResult{}, nil
}
