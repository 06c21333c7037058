package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// logIdle ends a log stream (without -follow) that has gone silent.
const logIdle = 5 * time.Second

// LogOptions choose what Logs shows.
type LogOptions struct {
	Service string // "" for every service of the stack
	Since   string // a duration (10m) or a timestamp, as docker logs takes it
	Follow  bool
	Tail    string // lines per service; "all" or a number
}

// Logs writes the services' logs through the Engine API, each line
// prefixed with its task (service.slot) and node.
func (s *Session) Logs(ctx context.Context, o LogOptions, w io.Writer) error {
	s.Ready(ctx)
	live, err := readLive(ctx, s.API, s.Env.Stack)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(live.Services))
	if o.Service != "" {
		if _, ok := live.Services[o.Service]; !ok {
			return noService(s.Env, o.Service, names)
		}
		names = []string{o.Service}
	}
	nodes := map[string]string{}
	if ns, err := s.API.NodeList(ctx, client.NodeListOptions{}); err == nil {
		for _, n := range ns.Items {
			nodes[n.ID] = n.Description.Hostname
		}
	}
	var mu sync.Mutex // whole lines from concurrent streams
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		svc := live.Services[name]
		tasks := map[string]string{}
		if ts, err := s.API.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", svc.ID)}); err == nil {
			for _, t := range ts.Items {
				tasks[t.ID] = fmt.Sprintf("%s.%d@%s", name, t.Slot, cmpOr(nodes[t.NodeID], short(t.NodeID, 12)))
			}
		}
		// Swarm's log stream sometimes never ends when a task is being
		// stopped or its container is gone (docker service logs hangs the
		// same way). Without -follow, a stream silent for logIdle is done.
		sctx, cancel := context.WithCancel(ctx)
		var idle *time.Timer
		var stalled atomic.Bool
		if !o.Follow {
			idle = time.AfterFunc(logIdle, func() { stalled.Store(true); cancel() })
		}
		rc, err := s.API.ServiceLogs(sctx, svc.ID, client.ServiceLogsOptions{
			ShowStdout: true, ShowStderr: true, Since: o.Since, Follow: o.Follow, Tail: cmpOr(o.Tail, "all"), Details: true,
		})
		if err != nil {
			cancel()
			if idle != nil {
				idle.Stop()
			}
			errs[i] = fmt.Errorf("logs of %s: %w", name, err) // the other streams go on
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			defer rc.Close()
			pr, pw := io.Pipe()
			go func() {
				_, err := stdcopy.StdCopy(pw, pw, rc)
				pw.CloseWithError(err)
			}()
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				if idle != nil {
					idle.Reset(logIdle)
				}
				prefix, line := taskPrefix(sc.Text(), tasks, name)
				mu.Lock()
				fmt.Fprintf(w, "%s | %s\n", prefix, line)
				mu.Unlock()
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil && !stalled.Load() {
				errs[i] = fmt.Errorf("logs of %s: %w", name, err)
			}
			if stalled.Load() {
				mu.Lock()
				fmt.Fprintf(w, "%s | (Swarm's log stream did not end; stopped after %s without a line)\n", name, logIdle)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return joinErrs(errs)
}

// taskPrefix splits the details the engine puts before each line
// (com.docker.swarm.task.id=...,...) from the line, and names the task.
func taskPrefix(raw string, tasks map[string]string, service string) (string, string) {
	details, line, ok := strings.Cut(raw, " ")
	if !ok || !strings.Contains(details, "com.docker.swarm.") {
		return service, raw
	}
	for _, kv := range strings.Split(details, ",") {
		if id, found := strings.CutPrefix(kv, "com.docker.swarm.task.id="); found {
			if name, ok := tasks[id]; ok {
				return name, line
			}
			return service + "." + short(id, 12), line
		}
	}
	return service, line
}

func joinErrs(errs []error) error {
	var out []string
	for _, e := range errs {
		if e != nil {
			out = append(out, e.Error())
		}
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(out, "; "))
}
