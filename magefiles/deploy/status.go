package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/probe"
	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// Status prints, per service, the release and digest, replicas running,
// desired and of the current spec, Swarm's update state and the nodes its
// tasks run on; then the last change and the lock.
func (s *Session) Status(ctx context.Context, w io.Writer) error {
	s.Ready(ctx)
	live, err := readLive(ctx, s.API, s.Env.Stack)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Environment %s, stack %s, through %s\n\n", s.Env.Name, s.Env.Stack, s.Endpoint)
	nodes := map[string]string{}
	ns, err := s.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("list the Swarm's nodes: %w", err)
	}
	for _, n := range ns.Items {
		nodes[n.ID] = n.Description.Hostname
	}
	if len(live.Services) == 0 {
		fmt.Fprintln(w, "No service is deployed.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tRELEASE\tDIGEST\tRUNNING\tCURRENT\tUPDATE\tNODES")
		for _, name := range slices.Sorted(maps.Keys(live.Services)) {
			svc := live.Services[name]
			obs, err := converge.Observe(ctx, s.API, svc.ID)
			if err != nil {
				return err
			}
			img := ImageOf(svc.Spec)
			desired := converge.DesiredTasks(obs.Service, obs.UpToDate, obs.Nodes)
			running, current := 0, 0
			cur := map[string]bool{}
			for _, t := range obs.UpToDate {
				cur[t.ID] = true
			}
			on := map[string]bool{}
			for _, t := range obs.Tasks {
				if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
					running++
					if cur[t.ID] {
						current++
					}
					on[cmpOr(nodes[t.NodeID], short(t.NodeID, 12))] = true
				}
			}
			update := "-"
			if st := obs.Service.UpdateStatus; st != nil {
				update = string(st.State)
				if st.Message != "" {
					update += ": " + st.Message
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d/%d\t%s\t%s\n", name, cmpOr(img.Tag, img.Ref), shortDigest(img.Digest),
				running, desired, current, desired, update, strings.Join(slices.Sorted(maps.Keys(on)), ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nRUNNING counts tasks Swarm reports running; a task with a health check is running only once it passed. CURRENT counts those of the service's current spec.")
		s.printSchema(ctx, w, live)
	}
	if err := s.printNodes(ctx, w, ns.Items, live); err != nil {
		return err
	}
	records, err := ledger.History{API: s.API, Stack: s.Env.Stack}.List(ctx)
	if err != nil {
		return err
	}
	if len(records) == 0 {
		fmt.Fprintln(w, "\nLast change: none recorded.")
	} else {
		r := records[0]
		fmt.Fprintf(w, "\nLast change: #%d %s of %s (%s) by %s at %s: %s", r.Seq, r.Action, r.Version, shortDigest(r.Digest), r.Who, r.Started.Local().Format(time.DateTime), r.Result)
		if r.Reason != "" {
			fmt.Fprintf(w, " (%s)", r.Reason)
		}
		fmt.Fprintln(w)
	}
	held, err := ledger.Lock{API: s.API, Stack: s.Env.Stack}.Read(ctx)
	switch {
	case err != nil:
		return err
	case held == nil:
		fmt.Fprintln(w, "Lock: free")
	default:
		fmt.Fprintln(w, "Lock:", held)
	}
	return nil
}

// printSchema shows, per task of each service running the environment's
// image, the release it reports and the schema version it expects and
// finds (its /version), asked by a job from that service's own image on
// the stack's network: the image has no curl, and the deploying machine
// cannot reach the overlay network.
func (s *Session) printSchema(ctx context.Context, w io.Writer, live *Live) {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(live.Services)) {
		spec := live.Services[name].Spec
		if ImageOf(spec).Repository == s.Env.Image && spec.Mode.Replicated != nil && spec.Mode.Replicated.Replicas != nil && *spec.Mode.Replicated.Replicas > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSchema, as each task's /version reports it (asked by a one-off job on the stack's network):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tTASK\tRELEASE\tEXPECTS\tDATABASE\tNOTE")
	for _, name := range names {
		spec := live.Services[name].Spec
		u := fmt.Sprintf("http://tasks.%s:%d/version", name, appPort(s.Env, name, spec))
		out, err := s.runJob(ctx, ownNetworks(spec, s.Env.Stack, live.NetworkNames), JobOptions{Purpose: "status", Args: []string{"probe", "-all", u}, Deadline: time.Minute})
		rs := probe.Parse(out)
		if len(rs) == 0 {
			why := "no answer"
			if err != nil {
				why = err.Error() + lastLine(out)
			}
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tunknown: %s\n", name, why)
			continue
		}
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\n", name, schemaRow(r))
		}
	}
	_ = tw.Flush()
}

// schemaRow is one task's columns after SERVICE.
func schemaRow(r probe.Result) string {
	task := cmpOr(r.Address, r.URL)
	var v struct {
		Version string `json:"version"`
		Schema  *struct {
			Expected int64  `json:"expected"`
			Database *int64 `json:"database"`
			Error    string `json:"error"`
		} `json:"schema"`
	}
	switch {
	case r.Error != "":
		return fmt.Sprintf("%s\t-\t-\t-\t%s", task, r.Error)
	case r.Status != 200 || json.Unmarshal(r.Body, &v) != nil:
		return fmt.Sprintf("%s\t-\t-\t-\t/version answered %d", task, r.Status)
	case v.Schema == nil:
		return fmt.Sprintf("%s\t%s\t-\t-\ta release that does not report its schema", task, v.Version)
	case v.Schema.Database == nil:
		return fmt.Sprintf("%s\t%s\t%d\t?\tthe database cannot be read: %s", task, v.Version, v.Schema.Expected, v.Schema.Error)
	}
	note := "in step"
	switch db := *v.Schema.Database; {
	case db < v.Schema.Expected:
		note = "behind: migrations this release needs are not applied"
	case db > v.Schema.Expected:
		note = "ahead: the database has migrations this release does not know (a rollback; expand/contract keeps that safe)"
	}
	return fmt.Sprintf("%s\t%s\t%d\t%d\t%s", task, v.Version, v.Schema.Expected, *v.Schema.Database, note)
}

// appPort is the port the app listens on in its containers: the smoke
// check's when it names this service, else HTTP_PORT in its environment,
// else the service's default, 8080.
func appPort(env *envfile.Environment, name string, spec swarm.ServiceSpec) int {
	if env.Smoke != nil && env.Smoke.Service == name {
		return env.Smoke.Port
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		if p, err := strconv.Atoi(envMap(cs.Env)["HTTP_PORT"]); err == nil && p > 0 {
			return p
		}
	}
	return envfile.DefaultSmokePort
}

// printNodes lists every node of the Swarm: role, availability, state,
// engine, address, and which of the stack's tasks it runs.
func (s *Session) printNodes(ctx context.Context, w io.Writer, nodes []swarm.Node, live *Live) error {
	on := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(live.Services)) {
		ts, err := s.API.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", live.Services[name].ID).Add("desired-state", "running")})
		if err != nil {
			return fmt.Errorf("tasks of %s: %w", name, err)
		}
		for _, t := range ts.Items {
			task := fmt.Sprintf("%s.%d", name, t.Slot)
			if t.Slot == 0 {
				task = name // global
			}
			if t.Status.State != swarm.TaskStateRunning {
				task += "(" + string(t.Status.State) + ")"
			}
			on[t.NodeID] = append(on[t.NodeID], task)
		}
	}
	fmt.Fprintln(w, "\nNodes:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tROLE\tAVAILABILITY\tSTATE\tENGINE\tADDRESS\tTASKS")
	slices.SortFunc(nodes, func(a, b swarm.Node) int { return strings.Compare(a.Description.Hostname, b.Description.Hostname) })
	for _, n := range nodes {
		role := string(n.Spec.Role)
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			role += " (leader)"
		} else if n.ManagerStatus != nil && n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
			role += " (" + string(n.ManagerStatus.Reachability) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Description.Hostname, short(n.ID, 12), role, n.Spec.Availability,
			n.Status.State, cmpOr(n.Description.Engine.EngineVersion, "-"), cmpOr(n.Status.Addr, "-"), cmpOr(strings.Join(on[n.ID], ", "), "-"))
	}
	return tw.Flush()
}
