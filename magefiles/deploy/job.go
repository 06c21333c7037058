package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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
	Auth     AuthFunc
	Poll     time.Duration
}

// RunJob runs base's image once as a Swarm replicated-job with base's
// networks, secrets, environment and placement, and args as its command.
// It watches the task itself, with a deadline (docker service create
// --detach=false hangs forever on a failing job, docker/cli#2979), returns
// (and prints) the task's output, and removes the job whatever happened.
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
		return "", fmt.Errorf("create job %s: %w", o.Name, err)
	}
	defer func() {
		_ = removeService(cleanup, api, r.ID)
		removeJobContainers(cleanup, api, r.ID)
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
