package deploy

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

func noAuth(context.Context, string) (string, error) { return "", nil }

// RunJob copies the service's task but not its identity: no health check,
// no restarts, no network alias (the job would answer for the service's
// name), the job's own name and labels; it returns the output and removes
// the job.
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
			api := fakeswarm.New()
			api.JobState, api.JobOutput = tt.state, "pending  00003_x.sql\n"
			var job swarm.ServiceSpec
			api.OnChange = func(s *swarm.Service, _ []*swarm.Task) { job = s.Spec }
			var shown bytes.Buffer
			out, err := runJobOn(t.Context(), t.Context(), api, base, JobOptions{
				Purpose: "migrate", Stack: "svc", Args: []string{"migrate", "status"}, Deadline: time.Second, Out: &shown, Poll: time.Millisecond, Auth: noAuth,
			})
			if (err != nil) != tt.wantErr || out != "pending  00003_x.sql\n" || shown.String() != "  | pending  00003_x.sql\n" {
				t.Fatalf("RunJob = %q, %v; shown %q", out, err, shown.String())
			}
			cs := job.TaskTemplate.ContainerSpec
			switch {
			case job.Mode.Replicated == nil || *job.Mode.Replicated.Replicas != 1:
				t.Errorf("mode %+v, want one replica (a replicated-job's container stays on its node)", job.Mode)
			case !strings.HasPrefix(job.Name, "svc_migrate-") || len(job.Name) != len("svc_migrate-")+6:
				t.Errorf("job name %q, want svc_migrate-<6 random characters>", job.Name)
			case !slices.Equal(cs.Args, []string{"migrate", "status"}) || cs.Image != "r/app:v1" || !slices.Equal(cs.Env, []string{"APP_ENV=staging"}):
				t.Errorf("container %+v", cs)
			case cs.Healthcheck == nil || cs.Healthcheck.Test[0] != "NONE":
				t.Errorf("health check %+v", cs.Healthcheck)
			case job.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionNone:
				t.Errorf("restart policy %+v", job.TaskTemplate.RestartPolicy)
			case len(job.TaskTemplate.Networks) != 1 || job.TaskTemplate.Networks[0].Target != "svc_internal" || len(job.TaskTemplate.Networks[0].Aliases) != 0:
				t.Errorf("networks %+v: want the service's, without its alias", job.TaskTemplate.Networks)
			case job.Labels[StackLabel] != "" || job.Labels[ledger.LabelKind] != "job" || job.Labels[ledger.LabelStack] != "svc" || job.Labels[labelPurpose] != "migrate":
				t.Errorf("labels %v", job.Labels)
			}
			if base.TaskTemplate.Networks[0].Aliases[0] != "app" {
				t.Error("RunJob changed the service's own spec")
			}
			if left := api.Services(); len(left) != 0 {
				t.Errorf("the job was not removed: %v", left)
			}
		})
	}
}

// A job is removed, or a warning says it was not, whatever happened to
// its create.
func TestRunJobLeavesNoJobUnsaid(t *testing.T) {
	base := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "r/app:v1"}}}
	tests := []struct {
		name      string
		createErr error
		interrupt bool  // the caller's context ends during the create
		removeErr error // for the job made
		left      int   // jobs left in the Swarm
		warning   string
	}{
		{name: "the create failed, but the engine made it", createErr: errors.New("connection reset")},
		{name: "the caller's Ctrl-C during the create", createErr: context.Canceled, interrupt: true},
		{name: "the removal fails", removeErr: errors.New("engine busy"), left: 1, warning: "was not removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			api := fakeswarm.New()
			api.After = func(_ context.Context, method string) error {
				if method != "ServiceCreate" || tt.createErr == nil {
					return nil
				}
				if tt.interrupt {
					cancel()
				}
				return tt.createErr
			}
			if tt.removeErr != nil {
				api.Err = map[string]error{"ServiceRemove": tt.removeErr}
			}
			var out bytes.Buffer
			_, err := runJobOn(ctx, t.Context(), api, base, JobOptions{Purpose: "migrate", Stack: "svc", Deadline: time.Second, Out: &out, Poll: time.Millisecond, Auth: noAuth})
			if (err != nil) != (tt.createErr != nil) {
				t.Fatalf("RunJob: %v", err)
			}
			if left := api.Services(); len(left) != tt.left {
				t.Errorf("job(s) left %v, want %d", left, tt.left)
			}
			if tt.warning != "" && !strings.Contains(out.String(), tt.warning) {
				t.Errorf("output %q does not say %q", out.String(), tt.warning)
			}
		})
	}
}

// A task list that fails for a moment (a dropped ssh connection) is not a
// failed job: the job runs on, and is not removed half-way through a
// migration. One that fails for longer than the tolerance ends the wait.
func TestRunJobRidesOutABlip(t *testing.T) {
	base := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "r/app:v1"}}}
	for _, tt := range []struct {
		name  string
		fails int
		blip  time.Duration
		err   string
	}{
		{name: "three failed reads", fails: 3, blip: time.Minute},
		{name: "silent past the tolerance", fails: 1 << 30, blip: 30 * time.Millisecond, err: "the endpoint did not answer for 30ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := fakeswarm.New()
			n := 0
			api.Before = func(method string) error {
				if method == "TaskList" && n < tt.fails {
					n++
					return errors.New("ssh: connection reset")
				}
				return nil
			}
			var out bytes.Buffer
			_, err := runJobOn(t.Context(), t.Context(), api, base, JobOptions{Purpose: "migrate", Stack: "svc", Deadline: time.Minute, Out: &out, Poll: time.Millisecond, Blip: tt.blip, Auth: noAuth})
			if tt.err == "" && err != nil {
				t.Fatalf("RunJob: %v\n%s", err, out.String())
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("RunJob: %v, want %q", err, tt.err)
			}
			if !strings.Contains(out.String(), "cannot read its task (ssh: connection reset); retrying") {
				t.Errorf("the blip is not said:\n%s", out.String())
			}
		})
	}
}

// Only what labels prove is a job a killed run left is removed before a
// migration: never a compose service named migrate, nor another stack's job.
func TestRemoveLeftoverJobs(t *testing.T) {
	api := fakeswarm.New()
	spec := func(name string, labels map[string]string) swarm.ServiceSpec {
		return swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name, Labels: labels},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "r/app:v1"}}}
	}
	job := func(stack, purpose string) map[string]string {
		return map[string]string{ledger.LabelKind: "job", ledger.LabelStack: stack, labelPurpose: purpose}
	}
	api.AddService(spec("svc_migrate", map[string]string{StackLabel: "svc"}))       // the stack's own service called migrate
	api.AddService(spec("svc_migrate-abc123", job("svc", "migrate")))               // left by a killed run
	api.AddService(spec("svc_migrate-status-def456", job("svc", "migrate-status"))) // a dry run's, running now
	api.AddService(spec("other_migrate-ghi789", job("other", "migrate")))           // another stack's
	var out bytes.Buffer
	removeLeftoverJobs(t.Context(), api, "svc", "migrate", &out)
	want := []string{"other_migrate-ghi789", "svc_migrate", "svc_migrate-status-def456"}
	if got := api.Services(); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v\n%s", got, want, out.String())
	}
}
