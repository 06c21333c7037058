package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/scrape"
)

// TopOptions choose what deploy:top shows.
type TopOptions struct {
	// Watch repeats until the context ends (Ctrl-C), each round judged
	// over the last minute of samples.
	Watch bool
	// Rounds stops a watch after this many rounds; 0: until the context
	// ends.
	Rounds int
	// Window is the span of a single run's two samples; Every the pause
	// between a watch's rounds. 15s and 5s when zero.
	Window, Every time.Duration
	// SVG, when set, is a file the samples are plotted into (rewritten
	// each round).
	SVG string
}

// History is how far back deploy:top judges.
const History = time.Minute

// The scaling guide's thresholds (the deployment standard's table).
const (
	cpuHigh     = 70.0 // % of the limit (or the node), sustained
	memoryHigh  = 80.0 // % of the limit (or the node)
	p99Rising   = 1.5  // the window's newer half against its older half
	p99RisingAt = 0.05 // seconds: below this a rise is noise
)

// taskInfo is what the Swarm says of a task deploy:top scrapes.
type taskInfo struct {
	Service, Name, Node string
	CPULimit            float64 // cores: the task's limit, else its node's
	CPUOfNode           bool
	MemLimit            float64 // bytes: the task's limit, else its node's
	MemOfNode           bool
}

// topService is a service deploy:top scrapes.
type topService struct {
	name string
	spec swarm.ServiceSpec // its job's base: the stack's own networks only
	url  string
}

// Top prints, per task of each service running the environment's image,
// CPU % of its limit (or of its node), memory % of its limit, request
// rate, latency p50 and p99, and pool use, judged against the scaling
// guide's thresholds, with its advice. The figures come from the tasks'
// metrics (metrics.port), read by a job on the stack's network (`app
// scrape`), so only a manager needs to be reachable.
func (s *Session) Top(ctx context.Context, o TopOptions, w io.Writer) error {
	o.Window = cmpDuration(o.Window, 15*time.Second)
	o.Every = cmpDuration(o.Every, 5*time.Second)
	s.Ready(ctx)
	live, err := readLive(ctx, s.API, s.Env.Stack)
	if err != nil {
		return err
	}
	var services []topService
	for _, name := range slices.Sorted(maps.Keys(live.Services)) {
		spec := live.Services[name].Spec
		if ImageOf(spec).Repository != s.Env.Image || spec.Mode.Replicated == nil || spec.Mode.Replicated.Replicas == nil || *spec.Mode.Replicated.Replicas == 0 {
			continue
		}
		base := ownNetworks(spec, s.Env.Stack, live.NetworkNames)
		services = append(services, topService{name: name, spec: base, url: fmt.Sprintf("http://tasks.%s:%d/metrics", name, metricsPort(spec))})
	}
	if len(services) == 0 {
		return fmt.Errorf("no service of stack %s runs %s at 1 replica or more: nothing to scrape", s.Env.Stack, s.Env.Image)
	}
	fmt.Fprintf(w, "Environment %s, stack %s, through %s: the tasks' metrics, scraped by a job on the stack's network\n", s.Env.Name, s.Env.Stack, s.Endpoint)
	samples := map[string][]scrape.Sample{} // by task address
	for round := 1; ; round++ {
		count, every := 1, 0*time.Second
		if round == 1 {
			count, every = 2, o.Window
		}
		tasks, err := s.topTasks(ctx, live, services)
		if err != nil {
			return err
		}
		for _, svc := range services {
			out, err := s.runJob(ctx, svc.spec, JobOptions{Purpose: "top", Deadline: every + 2*time.Minute,
				Args: []string{"scrape", "-all", "-count", strconv.Itoa(count), "-every", every.String(), svc.url}})
			got := scrape.Parse(out)
			if len(got) == 0 {
				if strings.Contains(out, `unknown command "scrape"`) {
					return fmt.Errorf("service %s: its image predates app scrape: deploy a newer release first", svc.name)
				}
				if err != nil {
					return fmt.Errorf("scrape %s: %w%s", svc.name, err, lastLine(out))
				}
			}
			for _, smp := range got {
				samples[smp.Address] = append(samples[smp.Address], smp)
			}
		}
		now := time.Now()
		for addr, ss := range samples {
			samples[addr] = slices.DeleteFunc(ss, func(x scrape.Sample) bool { return now.Sub(x.Time) > History+o.Every })
		}
		rows := topRows(samples, tasks)
		if o.Watch {
			fmt.Fprintf(w, "\n%s\n", now.Format(time.TimeOnly))
		}
		printTop(w, rows, o.Watch)
		if o.SVG != "" {
			if err := writeTopSVG(o.SVG, samples, tasks); err != nil {
				return err
			}
		}
		if !o.Watch || (o.Rounds > 0 && round >= o.Rounds) {
			if o.SVG != "" {
				fmt.Fprintf(w, "\nPlot: %s\n", o.SVG)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Every):
		}
	}
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ownNetworks is spec attached to the stack's own networks only: on a
// network other stacks share (traefik-public), the service's name
// (tasks.app) resolves to their tasks too. A spec on no network of the
// stack's own keeps all of its.
func ownNetworks(spec swarm.ServiceSpec, stack string, names map[string]string) swarm.ServiceSpec {
	var own []swarm.NetworkAttachmentConfig
	for _, n := range spec.TaskTemplate.Networks {
		name := n.Target
		if mapped, ok := names[n.Target]; ok {
			name = mapped
		}
		if strings.HasPrefix(name, stack+"_") {
			own = append(own, n)
		}
	}
	if len(own) == 0 {
		return spec
	}
	spec.TaskTemplate.Networks = own
	return spec
}

// metricsPort is where the app serves its metrics: METRICS_PORT in the
// service's environment, else the service's default, 9090.
func metricsPort(spec swarm.ServiceSpec) int {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		if p, err := strconv.Atoi(envMap(cs.Env)["METRICS_PORT"]); err == nil && p > 0 {
			return p
		}
	}
	return 9090
}

// topTasks maps the addresses of the services' running tasks to what the
// Swarm says of them.
func (s *Session) topTasks(ctx context.Context, live *Live, services []topService) (map[string]taskInfo, error) {
	ns, err := s.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the Swarm's nodes: %w", err)
	}
	nodes := map[string]swarm.Node{}
	for _, n := range ns.Items {
		nodes[n.ID] = n
	}
	out := map[string]taskInfo{}
	for _, svc := range services {
		ts, err := s.API.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", live.Services[svc.name].ID).Add("desired-state", "running")})
		if err != nil {
			return nil, fmt.Errorf("tasks of %s: %w", svc.name, err)
		}
		for _, t := range ts.Items {
			n := nodes[t.NodeID]
			info := taskInfo{Service: svc.name, Name: fmt.Sprintf("%s.%d", svc.name, t.Slot), Node: cmpOr(n.Description.Hostname, short(t.NodeID, 12))}
			var lim *swarm.Limit
			if r := t.Spec.Resources; r != nil {
				lim = r.Limits
			}
			if lim != nil && lim.NanoCPUs > 0 {
				info.CPULimit = float64(lim.NanoCPUs) / 1e9
			} else {
				info.CPULimit, info.CPUOfNode = float64(n.Description.Resources.NanoCPUs)/1e9, true
			}
			if lim != nil && lim.MemoryBytes > 0 {
				info.MemLimit = float64(lim.MemoryBytes)
			} else {
				info.MemLimit, info.MemOfNode = float64(n.Description.Resources.MemoryBytes), true
			}
			for _, a := range t.NetworksAttachments {
				for _, cidr := range a.Addresses {
					out[cidr.Addr().String()] = info
				}
			}
		}
	}
	return out, nil
}

// Row is one task's figures over the window, and the judgement.
type Row struct {
	Task    taskInfo
	Address string
	Window  time.Duration
	Samples int
	Error   string // the newest scrape's, when it failed

	CPU        float64 // % of the task's CPU limit (or its node's CPUs)
	CPUAll     bool    // every interval of the window above cpuHigh
	Memory     float64 // % of the limit (or the node's memory)
	MemoryRise float64 // bytes per minute over the window
	RPS        float64
	P50, P99   float64 // seconds
	P99Before  float64 // the window's older half; 0 with fewer than 3 samples
	Pool       *scrape.Pool
	PoolFull   bool    // acquired reached max in a sample of the window
	Waits      float64 // per second
	AvgWait    float64 // seconds
	CPUSeries  []float64
	Signals    []Signal
}

// Signal is one line of the scaling guide that a row meets.
type Signal struct {
	Short  string // for the table
	Advice string // the standard's advice, with the figures
}

// topRows computes and judges a row per task with samples.
func topRows(samples map[string][]scrape.Sample, tasks map[string]taskInfo) []Row {
	var rows []Row
	for _, addr := range slices.Sorted(maps.Keys(samples)) {
		ss := samples[addr]
		host, _, _ := net.SplitHostPort(addr)
		info, ok := tasks[host]
		if !ok {
			info = taskInfo{Name: "?", Node: "?", Service: "?"}
		}
		r := Row{Task: info, Address: addr}
		var good []scrape.Sample
		for _, s := range ss {
			if s.Error == "" {
				good = append(good, s)
			}
		}
		if last := ss[len(ss)-1]; last.Error != "" {
			r.Error = last.Error
		}
		// A restarted process starts its counters again: only its samples.
		if n := len(good); n > 0 {
			start := good[n-1].StartTime
			good = slices.DeleteFunc(good, func(s scrape.Sample) bool { return s.StartTime != start })
		}
		measure(&r, good)
		r.Signals = judge(r)
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b Row) int { return strings.Compare(a.Task.Name, b.Task.Name) })
	return rows
}

// measure fills r's figures from one process's samples, oldest first.
func measure(r *Row, ss []scrape.Sample) {
	r.Samples = len(ss)
	if len(ss) < 2 {
		return
	}
	first, last := ss[0], ss[len(ss)-1]
	dt := last.Time.Sub(first.Time).Seconds()
	if dt <= 0 {
		return
	}
	r.Window = last.Time.Sub(first.Time)
	cores := (last.CPUSeconds - first.CPUSeconds) / dt
	r.CPU = pct(cores, r.Task.CPULimit)
	r.CPUAll = true
	for i := 1; i < len(ss); i++ {
		d := ss[i].Time.Sub(ss[i-1].Time).Seconds()
		c := 0.0
		if d > 0 {
			c = pct((ss[i].CPUSeconds-ss[i-1].CPUSeconds)/d, r.Task.CPULimit)
		}
		r.CPUSeries = append(r.CPUSeries, c)
		if c <= cpuHigh {
			r.CPUAll = false
		}
	}
	r.Memory = pct(last.RSSBytes, r.Task.MemLimit)
	r.MemoryRise = (last.RSSBytes - first.RSSBytes) / dt * 60
	h := last.Latency.Sub(first.Latency)
	r.RPS = h.Count / dt
	r.P50, r.P99 = h.Quantile(0.5), h.Quantile(0.99)
	if len(ss) >= 3 {
		mid := ss[len(ss)/2]
		r.P99Before = mid.Latency.Sub(first.Latency).Quantile(0.99)
		r.P99 = last.Latency.Sub(mid.Latency).Quantile(0.99)
	}
	if last.Pool != nil && first.Pool != nil {
		r.Pool = last.Pool
		r.Waits = (last.Pool.Waits - first.Pool.Waits) / dt
		if n := last.Pool.Waits - first.Pool.Waits; n > 0 {
			r.AvgWait = (last.Pool.WaitSeconds - first.Pool.WaitSeconds) / n
		}
		for _, s := range ss {
			if s.Pool != nil && s.Pool.Max > 0 && s.Pool.Acquired >= s.Pool.Max {
				r.PoolFull = true
			}
		}
	}
}

func pct(v, of float64) float64 {
	if of <= 0 {
		return 0
	}
	return 100 * v / of
}

// judge holds a row against the scaling guide (the deployment standard's
// "When to Scale" table, and its horizontal-or-vertical decision):
//
//	response times increasing   add replicas or optimise code
//	CPU > 70% sustained         add replicas (CPU-bound: a bigger server)
//	memory > 80%                add replicas or fix a leak
//	connection pool exhausted   increase the pool or add replicas
func judge(r Row) []Signal {
	var out []Signal
	if r.Samples < 2 {
		return nil
	}
	of := fmt.Sprintf("its limit (%s CPU)", trimFloat(r.Task.CPULimit))
	if r.Task.CPUOfNode {
		of = fmt.Sprintf("its node's %s CPUs (no limit)", trimFloat(r.Task.CPULimit))
	}
	cpuBound := r.CPU > cpuHigh && (r.CPUAll || len(r.CPUSeries) < 2)
	if cpuBound {
		up := "raise APP_CPUS (the limit), or a bigger server"
		if r.Task.CPUOfNode {
			up = "a bigger server"
		}
		also := ""
		if poolFull(r) {
			// Requests that hold a connection wait for CPU too: a bigger
			// pool would only let more of them wait.
			also = fmt.Sprintf(" (the database pool is full too, %.1f acquires/s waiting: a consequence, connections are held by requests waiting for CPU; raising the pool would not help)", r.Waits)
		}
		out = append(out, Signal{Short: fmt.Sprintf("CPU > %.0f%%", cpuHigh),
			Advice: fmt.Sprintf("CPU at %.0f%% of %s over %s, above %.0f%% throughout: add replicas (deploy:scale); CPU-bound work also scales up: %s%s", r.CPU, of, r.Window.Round(time.Second), cpuHigh, up, also)})
	}
	if r.Memory > memoryHigh {
		what := "add replicas, or fix a leak"
		if r.MemoryRise > 0.05*r.Task.MemLimit {
			what = fmt.Sprintf("it is rising (%s a minute): look for a leak first, then add replicas", bytesText(r.MemoryRise))
		}
		out = append(out, Signal{Short: fmt.Sprintf("memory > %.0f%%", memoryHigh),
			Advice: fmt.Sprintf("memory at %.0f%% of %s: %s", r.Memory, memOf(r.Task), what)})
	}
	if poolFull(r) && !cpuBound {
		out = append(out, Signal{Short: "pool exhausted",
			Advice: fmt.Sprintf("database pool exhausted: all %s connections in use during the window, %.1f acquires/s waited for one (%s on average): raise the pool (database.max_conns, DATABASE_MAX_CONNS; Postgres's max_connections must cover replicas x pool) or add replicas",
				trimFloat(r.Pool.Max), r.Waits, seconds(r.AvgWait))})
	}
	if r.P99Before > 0 && r.P99 > p99Rising*r.P99Before && r.P99 > p99RisingAt {
		why := "add replicas or optimise the code"
		switch {
		case cpuBound:
			why = "CPU-bound (above): a bigger server or more CPU first, then replicas"
		case poolFull(r):
			why = "waiting for the database (above): I/O-bound, so add replicas or raise the pool"
		}
		out = append(out, Signal{Short: "p99 rising",
			Advice: fmt.Sprintf("response times increasing: p99 %s, from %s earlier in the window: %s", seconds(r.P99), seconds(r.P99Before), why)})
	}
	return out
}

// poolFull says whether the pool was exhausted in the window: every
// connection in use in a sample, and acquires waiting.
func poolFull(r Row) bool { return r.Pool != nil && r.PoolFull && r.Waits > 0 }

// printTop writes the table, then each row's advice.
func printTop(w io.Writer, rows []Row, spark bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "SERVICE\tTASK\tNODE\tCPU\tMEMORY\tREQ/S\tP50\tP99\tPOOL\tWAITS/S\tJUDGED"
	if spark {
		header += "\tCPU (last minute)"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		judged := "ok"
		switch {
		case r.Error != "" && r.Samples < 2:
			judged = "no figures: " + r.Error
		case r.Samples < 2:
			judged = "one sample: no rates yet"
		case len(r.Signals) > 0:
			var s []string
			for _, sig := range r.Signals {
				s = append(s, sig.Short)
			}
			judged = strings.Join(s, ", ")
		}
		cpu := fmt.Sprintf("%.0f%% of %s", r.CPU, trimFloat(r.Task.CPULimit))
		if r.Task.CPUOfNode {
			cpu += " (node)"
		}
		pool := "-"
		if r.Pool != nil {
			pool = fmt.Sprintf("%s/%s", trimFloat(r.Pool.Acquired), trimFloat(r.Pool.Max))
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%.0f%% of %s\t%.1f\t%s\t%s\t%s\t%.1f\t%s", r.Task.Service, r.Task.Name, r.Task.Node, cpu,
			r.Memory, memOf(r.Task), r.RPS, seconds(r.P50), seconds(r.P99), pool, r.Waits, judged)
		if spark {
			line += "\t" + sparkline(r.CPUSeries)
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	var advice []string
	for _, r := range rows {
		for _, sig := range r.Signals {
			advice = append(advice, fmt.Sprintf("  %s (%s): %s", r.Task.Name, r.Task.Node, sig.Advice))
		}
	}
	if len(advice) == 0 {
		fmt.Fprintf(w, "\nNothing calls for a change: CPU <= %.0f%% of the limit, memory <= %.0f%%, the pool never exhausted, p99 not rising.\n", cpuHigh, memoryHigh)
		return
	}
	fmt.Fprintln(w, "\nAdvice (the deployment standard's scaling guide):")
	for _, a := range advice {
		fmt.Fprintln(w, a)
	}
}

func memOf(t taskInfo) string {
	if t.MemOfNode {
		return bytesText(t.MemLimit) + " (node)"
	}
	return bytesText(t.MemLimit)
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func bytesText(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0fMiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0fKiB", b/(1<<10))
}

func seconds(s float64) string {
	if s == 0 {
		return "-"
	}
	if s < 1 {
		return fmt.Sprintf("%.1fms", s*1000)
	}
	return fmt.Sprintf("%.2fs", s)
}

// sparkline draws values (percentages) with block characters, 100% full.
func sparkline(vs []float64) string {
	const blocks = "▁▂▃▄▅▆▇█"
	levels := []rune(blocks)
	var b strings.Builder
	for _, v := range vs {
		i := int(math.Round(v / 100 * float64(len(levels)-1)))
		b.WriteRune(levels[max(0, min(i, len(levels)-1))])
	}
	return b.String()
}

// writeTopSVG plots each task's CPU % and pool use (top) and p99 latency
// (bottom) over the samples kept.
func writeTopSVG(path string, samples map[string][]scrape.Sample, tasks map[string]taskInfo) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-svg: %w", err)
	}
	if err := topSVG(f, samples, tasks); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
