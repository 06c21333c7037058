package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// JobOptions describe a one-off task.
type JobOptions struct {
	Name     string   // the service name; an existing one (left by a killed run) is removed first
	Stack    string   // labels the job as the stack's
	Args     []string // replace the image's CMD: "migrate", "up"
	Deadline time.Duration
	Out      io.Writer // the job's output, each line prefixed; nil: not printed
	// Warn takes a warning that the job may be left behind; Out when nil,
	// standard error when both are.
	Warn io.Writer
	Auth AuthFunc
	Poll time.Duration
}

// RunJob runs base's image once as a Swarm replicated-job with base's
// networks, secrets, environment and placement, and args as its command.
// It watches the task itself, with a deadline (docker service create
// --detach=false hangs forever on a failing job, docker/cli#2979), returns
// (and prints) the task's output, and removes the job whatever happened,
// even after the caller's context ended or a create that seemed to fail;
// when it cannot, it says so.
func RunJob(ctx, cleanup context.Context, api client.APIClient, base swarm.ServiceSpec, o JobOptions) (string, error) {
	if o.Poll == 0 {
		o.Poll = 500 * time.Millisecond
	}
	one := uint64(1)
	if err := removeService(cleanup, api, o.Name); err != nil {
		return "", err
	}
	labels := map[string]string{labelKind: "job"}
	if o.Stack != "" {
		labels[labelStack] = o.Stack
	}
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: o.Name, Labels: labels},
		TaskTemplate: base.TaskTemplate,
		Mode:         swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}},
	}
	cs := *base.TaskTemplate.ContainerSpec
	cs.Args = o.Args
	// A job's health check would only delay its end.
	cs.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	spec.TaskTemplate.ContainerSpec = &cs
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	// The service's reservations size it for traffic, not for a one-off
	// task: the job keeps its placement, not its resources.
	spec.TaskTemplate.Resources = nil
	spec.TaskTemplate.ForceUpdate = 0
	// The service's network aliases ("app") would make the job one of the
	// addresses its name resolves to: clients (and a probe of tasks.app)
	// would reach a container that serves nothing.
	nets := make([]swarm.NetworkAttachmentConfig, len(base.TaskTemplate.Networks))
	for i, n := range base.TaskTemplate.Networks {
		n.Aliases = nil
		nets[i] = n
	}
	spec.TaskTemplate.Networks = nets
	r, err := createService(ctx, api, spec, o.Auth)
	if err != nil {
		// The engine may have made it all the same (Ctrl-C or a dropped ssh
		// connection mid-request): remove one of that name, if there is one.
		rctx, cancel := briefly(cleanup)
		defer cancel()
		if s, ierr := api.ServiceInspect(rctx, o.Name, client.ServiceInspectOptions{}); ierr == nil {
			o.remove(rctx, api, s.Service.ID)
		} else if !cerrdefs.IsNotFound(ierr) {
			o.warnf("job %s may have been made and left behind (%v): look for it with docker service ls", o.Name, ierr)
		}
		return "", fmt.Errorf("create job %s: %w", o.Name, err)
	}
	defer func() {
		rctx, cancel := briefly(cleanup)
		defer cancel()
		o.remove(rctx, api, r.ID)
	}()

	start := time.Now()
	deadline := time.NewTimer(o.Deadline)
	defer deadline.Stop()
	var final swarm.Task
	for {
		ts, err := api.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", r.ID)})
		if err != nil {
			return "", fmt.Errorf("tasks of job %s: %w", o.Name, err)
		}
		done := false
		for _, t := range ts.Items {
			switch t.Status.State {
			case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected:
				final, done = t, true
			case swarm.TaskStatePending:
				if t.Status.Err != "" && time.Since(start) >= unplaceableAfter {
					return "", fmt.Errorf("job %s: no node can run it: %s", o.Name, t.Status.Err)
				}
			}
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("job %s: %w", o.Name, ctx.Err())
		case <-deadline.C:
			return "", fmt.Errorf("job %s: not finished within %s", o.Name, o.Deadline)
		case <-time.After(o.Poll):
		}
	}
	out := jobLogs(ctx, api, r.ID)
	if o.Out != nil {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			fmt.Fprintf(o.Out, "  | %s\n", sc.Text())
		}
	}
	if final.Status.State != swarm.TaskStateComplete {
		return out, fmt.Errorf("job %s %s", o.Name, taskError(final))
	}
	return out, nil
}

// jobLogs reads a job's output, stdout and stderr together.
func jobLogs(ctx context.Context, api client.APIClient, id string) string {
	rc, err := api.ServiceLogs(ctx, id, client.ServiceLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "200"})
	if err != nil {
		return fmt.Sprintf("(no output: %v)\n", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		fmt.Fprintf(&buf, "(output cut short: %v)\n", err)
	}
	return strings.ReplaceAll(buf.String(), "\r\n", "\n")
}

// briefly bounds the removal of a job: it outlives the caller's context
// (a job left behind keeps its task's container and a name in the Swarm),
// but not for long.
func briefly(cleanup context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(cleanup), 15*time.Second)
}

// remove removes the job of service ID id and its containers, warning when
// the job stays.
func (o JobOptions) remove(ctx context.Context, api client.APIClient, id string) {
	if err := removeService(ctx, api, id); err != nil {
		o.warnf("job %s was not removed (%v): remove it with docker service rm %s", o.Name, err, o.Name)
		return
	}
	removeJobContainers(ctx, api, id)
}

func (o JobOptions) warnf(format string, args ...any) {
	w := o.Warn
	if w == nil {
		w = o.Out
	}
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "warning: "+format+"\n", args...)
}

func removeService(ctx context.Context, api client.APIClient, id string) error {
	if _, err := api.ServiceRemove(ctx, id, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// removeJobContainers removes the exited containers of a removed job's
// tasks: Swarm (20.10 at least) leaves them behind, one per run. Only the
// node behind the endpoint can be reached; on a multi-node Swarm a job that
// ran elsewhere leaves its container there.
func removeJobContainers(ctx context.Context, api client.APIClient, serviceID string) {
	cs, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "com.docker.swarm.service.id="+serviceID)})
	if err != nil {
		return
	}
	for _, c := range cs.Items {
		_, _ = api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
}
