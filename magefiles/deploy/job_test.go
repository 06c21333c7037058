package deploy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeJobs runs every job at once: its one task completes (or fails) and
// its output is out.
type fakeJobs struct {
	*fakeServices
	out     string
	state   swarm.TaskState
	created []swarm.ServiceSpec
}

func (f *fakeJobs) ServiceCreate(ctx context.Context, o client.ServiceCreateOptions) (client.ServiceCreateResult, error) {
	f.created = append(f.created, o.Spec)
	return f.fakeServices.ServiceCreate(ctx, o)
}

func (f *fakeJobs) TaskList(context.Context, client.TaskListOptions) (client.TaskListResult, error) {
	return client.TaskListResult{Items: []swarm.Task{{ID: "t1", Status: swarm.TaskStatus{State: f.state, Err: "task: non-zero exit (1)"}}}}, nil
}

func (f *fakeJobs) ServiceLogs(context.Context, string, client.ServiceLogsOptions) (client.ServiceLogsResult, error) {
	// The engine's multiplexed stream: an 8-byte header per frame.
	var b bytes.Buffer
	hdr := make([]byte, 8)
	hdr[0] = 1 // stdout
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(f.out)))
	b.Write(hdr)
	b.WriteString(f.out)
	return io.NopCloser(&b), nil
}

func (f *fakeJobs) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{}, nil
}

// RunJob copies the service's task but not its identity: no health check,
// no restarts, no network alias (the job would answer for the service's
// name), the job's own labels; it returns the output and removes the job.
func TestRunJob(t *testing.T) {
	base := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "svc_app", Labels: map[string]string{StackLabel: "svc"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "r/app:v1", Args: []string{"serve"}, Env: []string{"APP_ENV=staging"}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "svc_internal", Aliases: []string{"app"}}},
		},
	}
	for _, tt := range []struct {
		name    string
		state   swarm.TaskState
		wantErr bool
	}{
		{"completes", swarm.TaskStateComplete, false},
		{"fails", swarm.TaskStateFailed, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeJobs{fakeServices: &fakeServices{fakeSwarm: newFakeSwarm(), services: map[string]swarm.Service{}},
				out: "pending  00003_x.sql\n", state: tt.state}
			var shown bytes.Buffer
			out, err := RunJob(t.Context(), t.Context(), api, base, JobOptions{
				Name: "svc_migrate", Stack: "svc", Args: []string{"migrate", "status"}, Deadline: time.Second, Out: &shown, Poll: time.Millisecond,
				Auth: func(context.Context, string) (string, error) { return "", nil },
			})
			if (err != nil) != tt.wantErr || out != "pending  00003_x.sql\n" || shown.String() != "  | pending  00003_x.sql\n" {
				t.Fatalf("RunJob = %q, %v; shown %q", out, err, shown.String())
			}
			if len(api.created) != 1 {
				t.Fatalf("%d jobs made", len(api.created))
			}
			job := api.created[0]
			cs := job.TaskTemplate.ContainerSpec
			switch {
			case job.Mode.ReplicatedJob == nil:
				t.Error("not a replicated job")
			case !slices.Equal(cs.Args, []string{"migrate", "status"}) || cs.Image != "r/app:v1" || !slices.Equal(cs.Env, []string{"APP_ENV=staging"}):
				t.Errorf("container %+v", cs)
			case cs.Healthcheck == nil || cs.Healthcheck.Test[0] != "NONE":
				t.Errorf("health check %+v", cs.Healthcheck)
			case job.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionNone:
				t.Errorf("restart policy %+v", job.TaskTemplate.RestartPolicy)
			case len(job.TaskTemplate.Networks) != 1 || job.TaskTemplate.Networks[0].Target != "svc_internal" || len(job.TaskTemplate.Networks[0].Aliases) != 0:
				t.Errorf("networks %+v: want the service's, without its alias", job.TaskTemplate.Networks)
			case job.Labels[StackLabel] != "" || job.Labels[labelKind] != "job" || job.Labels[labelStack] != "svc":
				t.Errorf("labels %v", job.Labels)
			}
			if base.TaskTemplate.Networks[0].Aliases[0] != "app" {
				t.Error("RunJob changed the service's own spec")
			}
			if len(api.services) != 0 {
				t.Errorf("the job was not removed: %v", api.calls)
			}
		})
	}
}

// flakyJobs is fakeJobs with a connection that fails: a create the engine
// made but whose answer was lost, the caller's Ctrl-C during a create, a
// removal of the job refused. Its ServiceRemove honours the context, as the
// real client does.
type flakyJobs struct {
	*fakeJobs
	createErr error
	cancel    context.CancelFunc // the caller's Ctrl-C, mid-create
	removeErr error              // for the job made
}

func (f *flakyJobs) ServiceCreate(ctx context.Context, o client.ServiceCreateOptions) (client.ServiceCreateResult, error) {
	r, err := f.fakeJobs.ServiceCreate(ctx, o)
	if f.cancel != nil {
		f.cancel()
	}
	if f.createErr != nil {
		return client.ServiceCreateResult{}, f.createErr
	}
	return r, err
}

func (f *flakyJobs) ServiceRemove(ctx context.Context, id string, o client.ServiceRemoveOptions) (client.ServiceRemoveResult, error) {
	if err := ctx.Err(); err != nil {
		return client.ServiceRemoveResult{}, err
	}
	if f.removeErr != nil && strings.HasPrefix(id, "new-") {
		return client.ServiceRemoveResult{}, f.removeErr
	}
	return f.fakeJobs.ServiceRemove(ctx, id, o)
}

// A job is removed, or a warning says it was not, whatever happened to
// its create.
func TestRunJobLeavesNoJobUnsaid(t *testing.T) {
	base := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "r/app:v1"}}}
	tests := []struct {
		name      string
		createErr error
		interrupt bool // the caller's context ends during the create
		removeErr error
		left      int    // jobs left in the Swarm
		warning   string // in the output
	}{
		{name: "the create failed, but the engine made it", createErr: errors.New("connection reset")},
		{name: "the caller's Ctrl-C during the create", createErr: context.Canceled, interrupt: true},
		{name: "the removal fails", removeErr: errors.New("engine busy"), left: 1,
			warning: "warning: job svc_migrate was not removed (remove new-svc_migrate: engine busy): remove it with docker service rm svc_migrate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			api := &flakyJobs{fakeJobs: &fakeJobs{fakeServices: &fakeServices{fakeSwarm: newFakeSwarm(), services: map[string]swarm.Service{}},
				state: swarm.TaskStateComplete}, createErr: tt.createErr, removeErr: tt.removeErr}
			if tt.interrupt {
				api.cancel = cancel
			}
			var out bytes.Buffer
			_, err := RunJob(ctx, ctx, api, base, JobOptions{Name: "svc_migrate", Stack: "svc", Deadline: time.Second, Out: &out, Poll: time.Millisecond,
				Auth: func(context.Context, string) (string, error) { return "", nil }})
			if (err != nil) != (tt.createErr != nil) {
				t.Fatalf("RunJob: %v", err)
			}
			if len(api.services) != tt.left {
				t.Errorf("%d job(s) left, want %d: %v", len(api.services), tt.left, api.calls)
			}
			if tt.warning != "" && !strings.Contains(out.String(), tt.warning) {
				t.Errorf("output %q does not say %q", out.String(), tt.warning)
			}
		})
	}
}
