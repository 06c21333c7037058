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

	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// JobOptions describe a one-off task.
type JobOptions struct {
	Purpose  string   // what it is for: "migrate", "smoke"; in its name and labels
	Stack    string   // the stack it runs on: in its name and labels
	Args     []string // replace the image's CMD: "migrate", "up"
	Deadline time.Duration
	Out      io.Writer // the job's output, each line prefixed; nil: not printed
	// Warn takes a warning that the job may be left behind; Out when nil,
	// standard error when both are.
	Warn io.Writer
	Auth authFunc
	Poll time.Duration
	Blip time.Duration // how long the endpoint may fail to answer; converge.DefaultBlip when zero

	name string
}

// Labels of a job: it is one, of its stack, for its purpose. Only what
// these prove is a job is ever removed as one.
const labelPurpose = ledger.LabelPrefix + "purpose"

// jobAPI is what a job calls.
type jobAPI interface {
	serviceCreator
	taskLister
	ServiceInspect(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (client.ServiceInspectResult, error)
	ServiceRemove(ctx context.Context, serviceID string, options client.ServiceRemoveOptions) (client.ServiceRemoveResult, error)
	ServiceList(ctx context.Context, options client.ServiceListOptions) (client.ServiceListResult, error)
	ServiceLogs(ctx context.Context, serviceID string, options client.ServiceLogsOptions) (client.ServiceLogsResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerRemove(ctx context.Context, container string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
}

// runJob runs a job on the environment's stack.
func (s *Session) runJob(ctx context.Context, base swarm.ServiceSpec, o JobOptions) (string, error) {
	o.Stack, o.Auth, o.Poll = s.Env.Stack, s.Auth, s.Poll
	return runJobOn(ctx, s.bg(), s.API, base, o)
}

// runJobOn runs base's image once as a one-task Swarm service with base's
// networks, secrets, environment and placement, and args as its command,
// under a name of its own (<stack>_<purpose>-<random>). It watches the
// task itself, with a deadline (docker service create --detach=false hangs
// forever on a failing job, docker/cli#2979), riding out an endpoint that
// stops answering for a while; returns (and prints) the task's output, and
// removes the job whatever happened, even after the caller's context ended
// or a create that seemed to fail; when it cannot, it says so.
func runJobOn(ctx, cleanup context.Context, api jobAPI, base swarm.ServiceSpec, o JobOptions) (string, error) {
	if o.Poll == 0 {
		o.Poll = 500 * time.Millisecond
	}
	o.name = jobName(o.Stack, o.Purpose)
	one := uint64(1)
	labels := map[string]string{ledger.LabelKind: "job", ledger.LabelStack: o.Stack, labelPurpose: o.Purpose}
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: o.name, Labels: labels},
		TaskTemplate: base.TaskTemplate,
		// One replica that is never restarted, not a replicated-job: Swarm
		// forgets a finished job task without telling its node, so the
		// exited container stays on whichever node ran it (a worker the
		// endpoint cannot reach, say). A replica's task stays assigned
		// until the service is removed, and its node removes the container
		// then.
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
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
		if s, ierr := api.ServiceInspect(rctx, o.name, client.ServiceInspectOptions{}); ierr == nil {
			o.remove(rctx, api, s.Service.ID)
		} else if !cerrdefs.IsNotFound(ierr) {
			o.warnf("job %s may have been made and left behind (%v): look for it with docker service ls", o.name, ierr)
		}
		return "", fmt.Errorf("create job %s: %w", o.name, err)
	}
	defer func() {
		rctx, cancel := briefly(cleanup)
		defer cancel()
		o.remove(rctx, api, r.ID)
	}()

	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithDeadline(ctx, start.Add(o.Deadline))
	defer cancel()
	blip := converge.Blip{Window: o.Blip}
	var final swarm.Task
	for {
		ts, err := api.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", r.ID)})
		done := false
		switch {
		case parent.Err() != nil:
			return "", fmt.Errorf("job %s: %w", o.name, parent.Err())
		case ctx.Err() != nil:
			return "", fmt.Errorf("job %s: not finished within %s", o.name, o.Deadline)
		case err != nil:
			// A dropped connection is not a failed job: the job goes on
			// in the Swarm, and removing it now would cut a migration short.
			first, giveUp := blip.Fail(time.Now())
			if first {
				o.warnf("job %s: cannot read its task (%v); retrying for up to %s", o.name, err, blip.Window)
			}
			if giveUp {
				return "", fmt.Errorf("tasks of job %s: the endpoint did not answer for %s: %w", o.name, blip.Window, err)
			}
		default:
			blip.OK()
			for _, t := range ts.Items {
				switch t.Status.State {
				case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected:
					final, done = t, true
				case swarm.TaskStatePending:
					if t.Status.Err != "" && time.Since(start) >= converge.UnplaceableAfter {
						return "", fmt.Errorf("job %s: no node can run it: %s", o.name, t.Status.Err)
					}
				}
			}
		}
		if done {
			break
		}
		select {
		case <-parent.Done():
			return "", fmt.Errorf("job %s: %w", o.name, parent.Err())
		case <-ctx.Done():
			return "", fmt.Errorf("job %s: not finished within %s", o.name, o.Deadline)
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
		return out, fmt.Errorf("job %s %s", o.name, converge.TaskError(final))
	}
	return out, nil
}

// jobLogs reads a job's output, stdout and stderr together.
func jobLogs(ctx context.Context, api jobAPI, id string) string {
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
func (o JobOptions) remove(ctx context.Context, api jobAPI, id string) {
	if err := removeService(ctx, api, id); err != nil {
		o.warnf("job %s was not removed (%v): remove it with docker service rm %s", o.name, err, o.name)
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

type serviceRemover interface {
	ServiceRemove(ctx context.Context, serviceID string, options client.ServiceRemoveOptions) (client.ServiceRemoveResult, error)
}

func removeService(ctx context.Context, api serviceRemover, id string) error {
	if _, err := api.ServiceRemove(ctx, id, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// removeJobContainers removes the exited containers of a removed job's
// tasks: Swarm (20.10 at least) leaves them behind, one per run. Only the
// node behind the endpoint can be reached; on a multi-node Swarm a job that
// ran elsewhere leaves its container there.
func removeJobContainers(ctx context.Context, api jobAPI, serviceID string) {
	cs, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "com.docker.swarm.service.id="+serviceID)})
	if err != nil {
		return
	}
	for _, c := range cs.Items {
		_, _ = api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
}

// removeLeftoverJobs removes the jobs of purpose on stack that a killed
// run left behind: those its labels prove are such jobs, nothing merely
// named alike (a compose service called migrate is not a job). Called
// under the lock, for purposes only a change holding it runs.
func removeLeftoverJobs(ctx context.Context, api jobAPI, stack, purpose string, warn io.Writer) {
	ss, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: client.Filters{}.
		Add("label", ledger.LabelKind+"=job").Add("label", ledger.LabelStack+"="+stack).Add("label", labelPurpose+"="+purpose)})
	if err != nil {
		fmt.Fprintf(warn, "warning: cannot look for %s jobs a killed run left (%v)\n", purpose, err)
		return
	}
	for _, svc := range ss.Items {
		fmt.Fprintf(warn, "  removing job %s, left by a run that did not finish\n", svc.Spec.Name)
		o := JobOptions{name: svc.Spec.Name, Warn: warn}
		o.remove(ctx, api, svc.ID)
	}
}
