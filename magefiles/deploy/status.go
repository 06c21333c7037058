package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Status prints, per service, the release and digest, replicas running,
// desired and of the current spec, Swarm's update state and the nodes its
// tasks run on; then the last change and the lock.
func (d *Deployer) Status(ctx context.Context, w io.Writer) error {
	live, err := ReadLive(ctx, d.API, d.Env.Stack)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Environment %s, stack %s, through %s\n\n", d.Env.Name, d.Env.Stack, d.Endpoint)
	nodes := map[string]string{}
	if ns, err := d.API.NodeList(ctx, client.NodeListOptions{}); err == nil {
		for _, n := range ns.Items {
			nodes[n.ID] = n.Description.Hostname
		}
	}
	if len(live.Services) == 0 {
		fmt.Fprintln(w, "No service is deployed.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tRELEASE\tDIGEST\tRUNNING\tCURRENT\tUPDATE\tNODES")
		for _, name := range slices.Sorted(maps.Keys(live.Services)) {
			svc := live.Services[name]
			obs, err := Observe(ctx, d.API, svc.ID)
			if err != nil {
				return err
			}
			img := ImageOf(svc.Spec)
			desired := desiredTasks(obs.Service, obs.UpToDate)
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
	}
	records, err := History{API: d.API, Stack: d.Env.Stack}.List(ctx)
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
	held, _, err := Lock{API: d.API, Stack: d.Env.Stack}.Read(ctx)
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

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
