// Package fakeswarm is an in-memory Swarm manager for the deploy packages'
// unit tests: configs, secrets, services whose changes converge at once
// (or as a test says), their tasks, networks, nodes and job containers,
// with the engine's conflict and not-found errors. It answers the calls
// the deploy makes and nothing else: any other method panics through the
// nil embedded client, so a test that reaches one is testing the wrong
// thing. The integration and end-to-end suites use a real engine.
package fakeswarm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// Engine is the fake. Its exported fields may be set before use; read
// them under no lock only once the code under test has returned.
type Engine struct {
	client.APIClient

	mu       sync.Mutex
	n        int
	configs  []swarm.Config
	secrets  []swarm.Secret
	services []swarm.Service
	tasks    []task
	networks []network.Summary

	// Nodes are the Swarm's nodes; one ready manager when nil.
	Nodes []swarm.Node
	// SystemInfo is what Info answers; an active manager when nil.
	SystemInfo *system.Info
	// Now is the manager's clock; time.Now when nil.
	Now func() time.Time
	// Err makes a method fail: by method name ("ConfigCreate"), the error
	// it returns every time it is called, before it does anything.
	Err map[string]error
	// Before, when set, is asked before each call (by method name) and
	// fails it with the error it returns: a test can fail the first few.
	Before func(method string) error
	// After, when set, is asked after a call that changed something, and
	// its error is returned instead of the answer: the engine did the work
	// but the answer was lost.
	After func(ctx context.Context, method string) error
	// OnChange is called after each service create or update, under the
	// fake's lock, with the service as it now is: a test can make Swarm
	// roll an update back, pause it, or leave tasks pending.
	OnChange func(s *swarm.Service, tasks []*swarm.Task)
	// JobState and JobOutput are how a job's task ends and what it printed.
	JobState  swarm.TaskState
	JobOutput string
	// Calls lists the changes made, for tests to compare:
	// "create NAME", "update NAME image=IMAGE", "rollback NAME",
	// "remove NAME", "remove secret NAME", "remove container ID".
	Calls []string
}

type task struct {
	swarm.Task
	generation uint64 // the service version it was made for
}

// New returns an empty Swarm with one ready manager.
func New() *Engine { return &Engine{} }

func (f *Engine) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// fail says whether a call fails before it is made: its context ended (as
// the real client fails), Before refuses it, or Err names it.
func (f *Engine) fail(ctx context.Context, method string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.Before != nil {
		if err := f.Before(method); err != nil {
			return err
		}
	}
	return f.Err[method]
}

// after is After's answer for a call that changed something.
func (f *Engine) after(ctx context.Context, method string) error {
	if f.After == nil {
		return nil
	}
	return f.After(ctx, method)
}

func (f *Engine) id(prefix string) string {
	f.n++
	return prefix + strconv.Itoa(f.n)
}

func notFound(kind, id string) error {
	return cerrdefs.ErrNotFound.WithMessage(kind + " " + id + " not found")
}

// labelsMatch honours label filters of the form key=value, as the engine does.
func labelsMatch(filters client.Filters, labels map[string]string) bool {
	for l := range filters["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// Info answers as an active Swarm manager, unless SystemInfo says otherwise.
func (f *Engine) Info(ctx context.Context, _ client.InfoOptions) (client.SystemInfoResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "Info"); err != nil {
		return client.SystemInfoResult{}, err
	}
	if f.SystemInfo != nil {
		return client.SystemInfoResult{Info: *f.SystemInfo}, nil
	}
	return client.SystemInfoResult{Info: system.Info{ServerVersion: "fake", SystemTime: f.now().Format(time.RFC3339Nano),
		Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true, Cluster: &swarm.ClusterInfo{ID: "fakecluster"}}}}, nil
}

func (f *Engine) nodes() []swarm.Node {
	if f.Nodes != nil {
		return f.Nodes
	}
	return []swarm.Node{{ID: "node1", Description: swarm.NodeDescription{Hostname: "manager1"},
		Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.1"},
		Spec:   swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive, Role: swarm.NodeRoleManager}}}
}

// NodeList lists Nodes.
func (f *Engine) NodeList(ctx context.Context, _ client.NodeListOptions) (client.NodeListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "NodeList"); err != nil {
		return client.NodeListResult{}, err
	}
	return client.NodeListResult{Items: slices.Clone(f.nodes())}, nil
}

// --- configs -----------------------------------------------------------

func (f *Engine) ConfigCreate(ctx context.Context, o client.ConfigCreateOptions) (client.ConfigCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ConfigCreate"); err != nil {
		return client.ConfigCreateResult{}, err
	}
	for _, c := range f.configs {
		if c.Spec.Name == o.Spec.Name {
			return client.ConfigCreateResult{}, cerrdefs.ErrConflict.WithMessage("config " + o.Spec.Name + " already exists")
		}
	}
	id := f.id("cfg")
	f.configs = append(f.configs, swarm.Config{ID: id, Meta: swarm.Meta{CreatedAt: f.now()}, Spec: o.Spec})
	return client.ConfigCreateResult{ID: id}, f.after(ctx, "ConfigCreate")
}

func (f *Engine) findConfig(idOrName string) int {
	return slices.IndexFunc(f.configs, func(c swarm.Config) bool { return c.ID == idOrName || c.Spec.Name == idOrName })
}

func (f *Engine) ConfigInspect(ctx context.Context, id string, _ client.ConfigInspectOptions) (client.ConfigInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ConfigInspect"); err != nil {
		return client.ConfigInspectResult{}, err
	}
	i := f.findConfig(id)
	if i < 0 {
		return client.ConfigInspectResult{}, notFound("config", id)
	}
	return client.ConfigInspectResult{Config: f.configs[i]}, nil
}

func (f *Engine) ConfigRemove(ctx context.Context, id string, _ client.ConfigRemoveOptions) (client.ConfigRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ConfigRemove"); err != nil {
		return client.ConfigRemoveResult{}, err
	}
	i := f.findConfig(id)
	if i < 0 {
		return client.ConfigRemoveResult{}, notFound("config", id)
	}
	f.configs = slices.Delete(f.configs, i, i+1)
	return client.ConfigRemoveResult{}, f.after(ctx, "ConfigRemove")
}

// ConfigList leaves the data out, as the engine does.
func (f *Engine) ConfigList(ctx context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ConfigList"); err != nil {
		return client.ConfigListResult{}, err
	}
	var out []swarm.Config
	for _, c := range f.configs {
		if labelsMatch(o.Filters, c.Spec.Labels) {
			c.Spec.Data = nil
			out = append(out, c)
		}
	}
	return client.ConfigListResult{Items: out}, nil
}

// ConfigNames lists the configs' names, sorted.
func (f *Engine) ConfigNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.configs {
		out = append(out, c.Spec.Name)
	}
	slices.Sort(out)
	return out
}

// --- secrets -----------------------------------------------------------

func (f *Engine) SecretCreate(ctx context.Context, o client.SecretCreateOptions) (client.SecretCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "SecretCreate"); err != nil {
		return client.SecretCreateResult{}, err
	}
	for _, s := range f.secrets {
		if s.Spec.Name == o.Spec.Name {
			return client.SecretCreateResult{}, cerrdefs.ErrConflict.WithMessage("secret " + o.Spec.Name + " already exists")
		}
	}
	id := f.id("sec")
	f.secrets = append(f.secrets, swarm.Secret{ID: id, Meta: swarm.Meta{CreatedAt: f.now()}, Spec: o.Spec})
	return client.SecretCreateResult{ID: id}, f.after(ctx, "SecretCreate")
}

// SecretList honours name and label filters; it leaves the data out.
func (f *Engine) SecretList(ctx context.Context, o client.SecretListOptions) (client.SecretListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "SecretList"); err != nil {
		return client.SecretListResult{}, err
	}
	names := o.Filters["name"]
	var out []swarm.Secret
	for _, s := range f.secrets {
		if (len(names) > 0 && !names[s.Spec.Name]) || !labelsMatch(o.Filters, s.Spec.Labels) {
			continue
		}
		s.Spec.Data = nil
		out = append(out, s)
	}
	return client.SecretListResult{Items: out}, nil
}

func (f *Engine) SecretRemove(ctx context.Context, id string, _ client.SecretRemoveOptions) (client.SecretRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "SecretRemove"); err != nil {
		return client.SecretRemoveResult{}, err
	}
	i := slices.IndexFunc(f.secrets, func(s swarm.Secret) bool { return s.ID == id || s.Spec.Name == id })
	if i < 0 {
		return client.SecretRemoveResult{}, notFound("secret", id)
	}
	for _, svc := range f.services {
		for _, r := range svc.Spec.TaskTemplate.ContainerSpec.Secrets {
			if r.SecretID == f.secrets[i].ID {
				return client.SecretRemoveResult{}, cerrdefs.ErrInvalidArgument.WithMessage("secret " + f.secrets[i].Spec.Name + " is in use by service " + svc.Spec.Name)
			}
		}
	}
	f.Calls = append(f.Calls, "remove secret "+f.secrets[i].Spec.Name)
	f.secrets = slices.Delete(f.secrets, i, i+1)
	return client.SecretRemoveResult{}, nil
}

// AddSecret adds a secret as if made earlier.
func (f *Engine) AddSecret(s swarm.Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, s)
}

// Secrets returns the secrets, values included, oldest first.
func (f *Engine) Secrets() []swarm.Secret {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.secrets)
}

// --- networks ----------------------------------------------------------

func (f *Engine) NetworkList(ctx context.Context, _ client.NetworkListOptions) (client.NetworkListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "NetworkList"); err != nil {
		return client.NetworkListResult{}, err
	}
	return client.NetworkListResult{Items: slices.Clone(f.networks)}, nil
}

func (f *Engine) NetworkCreate(ctx context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "NetworkCreate"); err != nil {
		return client.NetworkCreateResult{}, err
	}
	id := f.id("net")
	f.networks = append(f.networks, network.Summary{Network: network.Network{Name: name, ID: id, Driver: o.Driver, Labels: o.Labels}})
	f.Calls = append(f.Calls, "create network "+name)
	return client.NetworkCreateResult{ID: id}, nil
}

// AddNetwork adds a network as if made earlier.
func (f *Engine) AddNetwork(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks = append(f.networks, network.Summary{Network: network.Network{Name: name, ID: f.id("net")}})
}

// --- services and tasks ------------------------------------------------

func (f *Engine) findService(idOrName string) int {
	return slices.IndexFunc(f.services, func(s swarm.Service) bool { return s.ID == idOrName || s.Spec.Name == idOrName })
}

// AddService adds a running service as if deployed earlier, with its tasks.
func (f *Engine) AddService(spec swarm.ServiceSpec) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := swarm.Service{ID: f.id("svc"), Meta: swarm.Meta{Version: swarm.Version{Index: 1}, CreatedAt: f.now()}, Spec: spec}
	f.services = append(f.services, s)
	f.startTasks(&f.services[len(f.services)-1])
	return s.ID
}

// Service returns the named service.
func (f *Engine) Service(name string) (swarm.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.findService(name)
	if i < 0 {
		return swarm.Service{}, false
	}
	return f.services[i], true
}

// Touch moves a service's version as Swarm does when it writes the
// service's update status, its spec unchanged.
func (f *Engine) Touch(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.findService(name); i >= 0 {
		f.services[i].Version.Index++
	}
}

func (f *Engine) ServiceCreate(ctx context.Context, o client.ServiceCreateOptions) (client.ServiceCreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ServiceCreate"); err != nil {
		return client.ServiceCreateResult{}, err
	}
	if f.findService(o.Spec.Name) >= 0 {
		return client.ServiceCreateResult{}, cerrdefs.ErrConflict.WithMessage("service " + o.Spec.Name + " already exists")
	}
	s := swarm.Service{ID: f.id("svc"), Meta: swarm.Meta{Version: swarm.Version{Index: 1}, CreatedAt: f.now()}, Spec: o.Spec}
	f.services = append(f.services, s)
	f.Calls = append(f.Calls, "create "+o.Spec.Name)
	f.startTasks(&f.services[len(f.services)-1])
	return client.ServiceCreateResult{ID: s.ID}, f.after(ctx, "ServiceCreate")
}

func (f *Engine) ServiceInspect(ctx context.Context, id string, _ client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ServiceInspect"); err != nil {
		return client.ServiceInspectResult{}, err
	}
	i := f.findService(id)
	if i < 0 {
		return client.ServiceInspectResult{}, notFound("service", id)
	}
	return client.ServiceInspectResult{Service: f.services[i]}, nil
}

func (f *Engine) ServiceList(ctx context.Context, o client.ServiceListOptions) (client.ServiceListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ServiceList"); err != nil {
		return client.ServiceListResult{}, err
	}
	var out []swarm.Service
	for _, s := range f.services {
		if labelsMatch(o.Filters, s.Spec.Labels) {
			out = append(out, s)
		}
	}
	return client.ServiceListResult{Items: out}, nil
}

func (f *Engine) ServiceUpdate(ctx context.Context, id string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ServiceUpdate"); err != nil {
		return client.ServiceUpdateResult{}, err
	}
	i := f.findService(id)
	if i < 0 {
		return client.ServiceUpdateResult{}, notFound("service", id)
	}
	if o.Spec.Name == "" {
		return client.ServiceUpdateResult{}, cerrdefs.ErrInvalidArgument.WithMessage("rpc error: code = InvalidArgument desc = mismatch") // what the engine says to an empty spec
	}
	s := &f.services[i]
	if o.Version.Index != 0 && o.Version.Index != s.Version.Index {
		return client.ServiceUpdateResult{}, errors.New("rpc error: code = Unknown desc = update out of sequence") // the engine's words
	}
	prev := s.Spec
	now := f.now()
	if o.Rollback == "previous" {
		if s.PreviousSpec == nil {
			return client.ServiceUpdateResult{}, cerrdefs.ErrInvalidArgument.WithMessage("service " + s.Spec.Name + " has no previous spec")
		}
		s.Spec = *s.PreviousSpec
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: &now, CompletedAt: &now}
		f.Calls = append(f.Calls, "rollback "+s.Spec.Name)
	} else {
		s.Spec = o.Spec
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &now, CompletedAt: &now}
		f.Calls = append(f.Calls, fmt.Sprintf("update %s image=%s", s.Spec.Name, o.Spec.TaskTemplate.ContainerSpec.Image))
	}
	s.PreviousSpec = &prev
	s.Version.Index++
	f.startTasks(s)
	return client.ServiceUpdateResult{}, f.after(ctx, "ServiceUpdate")
}

func (f *Engine) ServiceRemove(ctx context.Context, id string, _ client.ServiceRemoveOptions) (client.ServiceRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ServiceRemove"); err != nil {
		return client.ServiceRemoveResult{}, err
	}
	i := f.findService(id)
	if i < 0 {
		return client.ServiceRemoveResult{}, notFound("service", id)
	}
	sid := f.services[i].ID
	f.Calls = append(f.Calls, "remove "+f.services[i].Spec.Name)
	f.services = slices.Delete(f.services, i, i+1)
	f.tasks = slices.DeleteFunc(f.tasks, func(t task) bool { return t.ServiceID == sid })
	return client.ServiceRemoveResult{}, f.after(ctx, "ServiceRemove")
}

// startTasks replaces a service's tasks with those of its current spec,
// running (or, for a job, ended as JobState), then lets OnChange amend them.
func (f *Engine) startTasks(s *swarm.Service) {
	for i := range f.tasks {
		if t := &f.tasks[i]; t.ServiceID == s.ID && t.DesiredState == swarm.TaskStateRunning {
			t.DesiredState, t.Status.State = swarm.TaskStateShutdown, swarm.TaskStateShutdown
		}
	}
	n, state, desired := 1, swarm.TaskStateRunning, swarm.TaskStateRunning
	switch m := s.Spec.Mode; {
	case isOneShot(s.Spec):
		// A task run once (RunJob's): it ends as JobState, its desired
		// state staying running as Swarm keeps it.
		n, state = 1, f.JobState
		if state == "" {
			state = swarm.TaskStateComplete
		}
	case m.Replicated != nil && m.Replicated.Replicas != nil:
		n = int(*m.Replicated.Replicas) //nolint:gosec // test sizes
	case m.Global != nil:
		n = len(f.nodes())
	case m.ReplicatedJob != nil:
		state, desired = f.JobState, swarm.TaskStateComplete
		if state == "" {
			state = swarm.TaskStateComplete
		}

	}
	nodes := f.nodes()
	var made []*swarm.Task
	start := len(f.tasks)
	for i := range n {
		t := task{generation: s.Version.Index, Task: swarm.Task{
			ID: f.id("task"), Meta: swarm.Meta{CreatedAt: f.now()}, ServiceID: s.ID, Slot: i + 1, NodeID: nodes[i%len(nodes)].ID,
			DesiredState: desired, Status: swarm.TaskStatus{State: state, Timestamp: f.now()},
		}}
		if state == swarm.TaskStateFailed {
			t.Status.Err = "task: non-zero exit (1)"
			t.Status.ContainerStatus = &swarm.ContainerStatus{ExitCode: 1}
		}
		f.tasks = append(f.tasks, t)
	}
	for i := start; i < len(f.tasks); i++ {
		made = append(made, &f.tasks[i].Task)
	}
	if f.OnChange != nil {
		f.OnChange(s, made)
	}
}

// isOneShot is a service whose one task is never restarted.
func isOneShot(spec swarm.ServiceSpec) bool {
	rp := spec.TaskTemplate.RestartPolicy
	return rp != nil && rp.Condition == swarm.RestartPolicyConditionNone && spec.Mode.Replicated != nil
}

// TaskList honours the service and _up-to-date filters.
func (f *Engine) TaskList(ctx context.Context, o client.TaskListOptions) (client.TaskListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "TaskList"); err != nil {
		return client.TaskListResult{}, err
	}
	var out []swarm.Task
	for _, t := range f.tasks {
		if svc := o.Filters["service"]; len(svc) > 0 {
			i := slices.IndexFunc(f.services, func(s swarm.Service) bool { return s.ID == t.ServiceID })
			if i < 0 || (!svc[f.services[i].ID] && !svc[f.services[i].Spec.Name]) {
				continue
			}
			if o.Filters["_up-to-date"]["true"] && t.generation != f.services[i].Version.Index {
				continue
			}
		}
		out = append(out, t.Task)
	}
	return client.TaskListResult{Items: out}, nil
}

// ServiceLogs answers JobOutput, framed as the engine frames stdout.
func (f *Engine) ServiceLogs(ctx context.Context, _ string, _ client.ServiceLogsOptions) (client.ServiceLogsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ServiceLogs"); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	hdr := make([]byte, 8)
	hdr[0] = 1
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(f.JobOutput))) //nolint:gosec // test sizes
	b.Write(hdr)
	b.WriteString(f.JobOutput)
	return io.NopCloser(&b), nil
}

// --- containers (of jobs) ---------------------------------------------

// ContainerList lists one exited container per task of the service named
// by the com.docker.swarm.service.id label filter.
func (f *Engine) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ContainerList"); err != nil {
		return client.ContainerListResult{}, err
	}
	var out []container.Summary
	for l := range o.Filters["label"] {
		if id, ok := strings.CutPrefix(l, "com.docker.swarm.service.id="); ok {
			out = append(out, container.Summary{ID: "ctr-" + id})
		}
	}
	return client.ContainerListResult{Items: out}, nil
}

func (f *Engine) ContainerRemove(ctx context.Context, id string, _ client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ContainerRemove"); err != nil {
		return client.ContainerRemoveResult{}, err
	}
	f.Calls = append(f.Calls, "remove container "+id)
	return client.ContainerRemoveResult{}, nil
}

// Services lists the services' names, sorted.
func (f *Engine) Services() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.services {
		out = append(out, s.Spec.Name)
	}
	slices.Sort(out)
	return out
}

// SetUpdateStatus sets a service's update status, as Swarm would.
func (f *Engine) SetUpdateStatus(name string, st *swarm.UpdateStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.findService(name); i >= 0 {
		f.services[i].UpdateStatus = st
	}
}
