package swarmtest_test

// The test bed's own tests: a real Swarm of engines in network
// namespaces, an image pulled by every node from a registry on this
// machine's loopback, and each fault measured. TEST_MULTINODE=1 runs them.

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/swarmtest"
)

const (
	overlay = "swt-test"
	service = "whoami"
)

func TestIntegrationMultiNode(t *testing.T) {
	began := time.Now()
	c := swarmtest.Start(t, swarmtest.Options{})
	if up := time.Since(began); up > time.Minute {
		t.Errorf("bring-up took %v, want under a minute", up)
	}
	if len(c.Managers()) != 1 || len(c.Workers()) != 2 {
		t.Fatalf("%d managers and %d workers, want 1 and 2", len(c.Managers()), len(c.Workers()))
	}
	checkNodes(t, c)
	ref, port := whoamiImage(t)
	if err := c.Forward(port); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	mgr := c.Client(c.Managers()[0])
	if _, err := mgr.NetworkCreate(ctx, overlay, client.NetworkCreateOptions{Driver: "overlay", Attachable: true}); err != nil {
		t.Fatal(err)
	}
	three := uint64(3)
	created, err := mgr.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: service},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: ref, Args: []string{"serve"}, Hostname: "{{.Node.Hostname}}"},
			Placement:     &swarm.Placement{Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.id"}}}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: overlay}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &three}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}})
	if err != nil {
		t.Fatal(err)
	}
	svc := created.ID

	t.Run("spread", func(t *testing.T) {
		// One task per node, each node's engine having pulled the image
		// through its forwarder.
		began := time.Now()
		tasks := waitTasks(t, c, svc, 3, nil)
		t.Logf("3 tasks running, one per node, %.1fs after the service was created", time.Since(began).Seconds())
		for _, n := range c.Nodes {
			if len(tasks[n.ID]) != 1 {
				t.Errorf("%s runs %d tasks, want 1 (spread over node.id)", n.Name, len(tasks[n.ID]))
			}
		}
	})

	t.Run("overlay", func(t *testing.T) {
		// From a container on the manager, tasks.whoami answers from every
		// node: traffic crosses the hub over VXLAN.
		out := runOn(t, c, c.Managers()[0], ref, "ask", "tasks."+service)
		var hosts []string
		for line := range strings.Lines(out) {
			if f := strings.Fields(line); len(f) == 2 {
				hosts = append(hosts, f[1])
			}
		}
		slices.Sort(hosts)
		var want []string
		for _, n := range c.Nodes {
			want = append(want, n.Name)
		}
		if !slices.Equal(hosts, want) {
			t.Errorf("tasks.%s answered from %v, want %v:\n%s", service, hosts, want, out)
		}
	})

	t.Run("host-mode port", func(t *testing.T) {
		// A port published in host mode on every node answers on the
		// node's hub address, from this machine. (Through docker_gwbridge,
		// as a service on an overlay publishes it.)
		res, err := mgr.ServiceCreate(t.Context(), client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: service + "-host"},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: ref, Args: []string{"serve"}, Hostname: "{{.Node.Hostname}}"},
				Networks:      []swarm.NetworkAttachmentConfig{{Target: overlay}},
			},
			Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
			EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{
				{Protocol: network.TCP, TargetPort: 8080, PublishedPort: 18080, PublishMode: swarm.PortConfigPublishModeHost},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		waitTasks(t, c, res.ID, len(c.Nodes), nil)
		hc := &http.Client{Timeout: 3 * time.Second}
		for _, n := range c.Nodes {
			url := "http://" + net.JoinHostPort(n.Addr.String(), "18080") + "/"
			var body []byte
			for deadline := time.Now().Add(30 * time.Second); ; {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := hc.Do(req)
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					_ = resp.Body.Close()
				}
				if err == nil || time.Now().After(deadline) {
					if err != nil {
						t.Fatalf("%s: %v", url, err)
					}
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if string(body) != n.Name {
				t.Errorf("%s answered %q, want %s", url, body, n.Name)
			}
		}
		if _, err := mgr.ServiceRemove(t.Context(), res.ID, client.ServiceRemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kill and restart", func(t *testing.T) {
		w := busiestWorker(t, c, svc)
		task := waitTasks(t, c, svc, 3, nil)[w.ID][0]
		pid := task.Status.ContainerStatus.PID
		// A client on the manager asks the task on w every 100ms meanwhile.
		watcher := startOn(t, c, c.Managers()[0], ref, "watch", taskAddr(t, task), "15")
		time.Sleep(time.Second)
		killed := time.Now()
		if err := c.Kill(w); err != nil {
			t.Fatal(err)
		}
		// As after a power loss seen from the managers: the engine and its
		// containerd are gone, the task's container runs on.
		procs := map[string]bool{}
		for _, p := range c.Processes(w) {
			procs[comm(p)] = true
			if p == pid {
				procs["the task"] = true
			}
		}
		if procs["dockerd"] || procs["containerd"] || !procs["the task"] {
			t.Errorf("%s after Kill runs %v, want the task's process (%d) and neither dockerd nor containerd", w.Name, procs, pid)
		}
		if err := c.WaitNode(t.Context(), w, swarm.NodeStateDown); err != nil {
			t.Fatal(err)
		}
		down := time.Since(killed)
		waitTasks(t, c, svc, 3, w)
		moved := time.Since(killed)
		answered, failed, again := reachable(t, output(t, c, c.Managers()[0], watcher), w.Name, killed)
		if answered <= 0 {
			t.Errorf("the killed node's task never answered after the kill (answered until %v, failed from %v)", answered, failed)
		}
		began := time.Now()
		if err := c.Restart(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		rejoined := time.Since(began)
		waitNoTaskContainers(t, c, w)
		afterwards := "not again while watched"
		if again > 0 {
			afterwards = fmt.Sprintf("again from %.1fs", again.Seconds())
		}
		t.Logf("SIGKILL of %s's engine: node down after %.1fs, its task running elsewhere after %.1fs; its old task answered on the overlay until %.1fs after the kill, failed from %.1fs, answered %s; restarted: ready after %.1fs, its old container gone after %.1fs",
			w.Name, down.Seconds(), moved.Seconds(), answered.Seconds(), failed.Seconds(), afterwards, rejoined.Seconds(), time.Since(began).Seconds())
	})

	t.Run("drain and activate", func(t *testing.T) {
		w := busiestWorker(t, c, svc)
		began := time.Now()
		if err := c.Drain(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		waitTasks(t, c, svc, 3, w)
		t.Logf("drain of %s: its tasks running elsewhere after %.1fs", w.Name, time.Since(began).Seconds())
		if err := c.Activate(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		_, cli, err := c.Manager(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		res, err := cli.NodeInspect(t.Context(), w.ID, client.NodeInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if a := res.Node.Spec.Availability; a != swarm.NodeAvailabilityActive {
			t.Errorf("%s is %s after Activate, want active", w.Name, a)
		}
	})

	t.Run("partition and heal", func(t *testing.T) {
		w := c.Workers()[1]
		began := time.Now()
		if err := c.Partition(w); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitNode(t.Context(), w, swarm.NodeStateDown); err != nil {
			t.Fatal(err)
		}
		down := time.Since(began)
		began = time.Now()
		if err := c.Heal(w); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitNode(t.Context(), w, swarm.NodeStateReady); err != nil {
			t.Fatal(err)
		}
		t.Logf("partition of %s: node down after %.1fs; healed: ready after %.1fs", w.Name, down.Seconds(), time.Since(began).Seconds())
	})

	t.Run("stop and restart", func(t *testing.T) {
		w := c.Workers()[0]
		began := time.Now()
		if err := c.Stop(w); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(began)
		if err := c.WaitNode(t.Context(), w, swarm.NodeStateDown); err != nil {
			t.Fatal(err)
		}
		down := time.Since(began)
		began = time.Now()
		if err := c.Restart(t.Context(), w); err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGTERM of %s's engine: exited after %.1fs, node down after %.1fs; restarted: ready after %.1fs", w.Name, stopped.Seconds(), down.Seconds(), time.Since(began).Seconds())
	})
}

func TestIntegrationMultiNodeQuorum(t *testing.T) {
	c := swarmtest.Start(t, swarmtest.Options{Managers: 3})
	if len(c.Managers()) != 3 || len(c.Workers()) != 0 {
		t.Fatalf("%d managers and %d workers, want 3 and 0", len(c.Managers()), len(c.Workers()))
	}
	checkNodes(t, c)
	ctx := t.Context()
	leader := c.Managers()[0] // the one that made the Swarm
	began := time.Now()
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	// Another manager answers once the other two have elected a leader.
	var other *swarmtest.Node
	for other == nil {
		n, _, err := c.Manager(ctx)
		switch {
		case err == nil:
			other = n
		case time.Since(began) > time.Minute:
			t.Fatalf("no manager answers a minute after the leader's engine was killed: %v", err)
		default:
			time.Sleep(100 * time.Millisecond)
		}
	}
	answers := time.Since(began)
	if other == leader {
		t.Fatalf("Manager returned the killed %s", leader.Name)
	}
	if err := c.WaitNode(ctx, leader, swarm.NodeStateDown); err != nil {
		t.Fatal(err)
	}
	down := time.Since(began)
	if docker, err := exec.LookPath("docker"); err == nil {
		cmd := exec.CommandContext(ctx, docker, "node", "ls")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+other.Host)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), leader.Name) {
			t.Errorf("docker node ls on %s: %v:\n%s", other.Name, err, out)
		}
	}
	began = time.Now()
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	rejoined := time.Since(began)
	_, cli, err := c.Manager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cli.NodeInspect(ctx, leader.ID, client.NodeInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ms := res.Node.ManagerStatus; ms == nil || ms.Reachability != swarm.ReachabilityReachable {
		t.Errorf("%s after restart: manager status %+v, want reachable", leader.Name, ms)
	}
	t.Logf("SIGKILL of the leader %s's engine: %s answered after %.1fs, %s down after %.1fs; restarted: ready after %.1fs",
		leader.Name, other.Name, answers.Seconds(), leader.Name, down.Seconds(), rejoined.Seconds())
}

// BenchmarkIntegrationBringUp brings up and tears down the default bed
// b.N times and reports the median of each (go test -run '^$' -bench
// BringUp -benchtime 3x ./internal/swarmtest).
func BenchmarkIntegrationBringUp(b *testing.B) {
	var ups, downs []float64
	for b.Loop() {
		began := time.Now()
		c := swarmtest.Start(b, swarmtest.Options{})
		ups = append(ups, time.Since(began).Seconds())
		began = time.Now()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		downs = append(downs, time.Since(began).Seconds())
	}
	b.Logf("bring-up %v s, teardown %v s", ups, downs)
	b.ReportMetric(median(ups), "s-bringup-median")
	b.ReportMetric(median(downs), "s-teardown-median")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// checkNodes checks what every node says of itself: its own hostname,
// engine ID, Swarm node ID and role.
func checkNodes(t *testing.T, c *swarmtest.Cluster) {
	t.Helper()
	engines := map[string]bool{}
	for _, n := range c.Nodes {
		info, err := c.Client(n).Info(t.Context(), client.InfoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		i := info.Info
		if i.Name != n.Name || i.Swarm.NodeID != n.ID || n.ID == "" || i.Swarm.ControlAvailable != n.Manager || i.Swarm.NodeAddr != n.Addr.String() {
			t.Errorf("%s says name %q, node %q, manager %v, address %s; want %q, %q, %v, %s",
				n.Name, i.Name, i.Swarm.NodeID, i.Swarm.ControlAvailable, i.Swarm.NodeAddr, n.Name, n.ID, n.Manager, n.Addr)
		}
		if i.DockerRootDir != n.DataRoot || !strings.HasPrefix(n.Host, "unix://") {
			t.Errorf("%s: data root %s, host %s", n.Name, i.DockerRootDir, n.Host)
		}
		engines[i.ID] = true
	}
	if len(engines) != len(c.Nodes) {
		t.Errorf("%d engine IDs for %d nodes: engines share an identity", len(engines), len(c.Nodes))
	}
}

// whoamiImage builds testdata/whoami into a FROM scratch image, pushes it
// to a registry on this machine's loopback, and returns its reference by
// digest and the registry's port.
func whoamiImage(t *testing.T) (string, int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "whoami")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", bin, "./testdata/whoami")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build whoami: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "whoami", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/whoami"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host+"/swarmtest/whoami:test", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	_, portText, _ := strings.Cut(host, ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	return host + "/swarmtest/whoami@" + digest.String(), port
}

// waitTasks waits until svc has want tasks running (and meant to run) on
// nodes other than away, and returns them by node ID.
func waitTasks(t *testing.T, c *swarmtest.Cluster, svc string, want int, away *swarmtest.Node) map[string][]swarm.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var last string
	for {
		byNode := map[string][]swarm.Task{}
		count := 0
		_, cli, err := c.Manager(ctx)
		if err == nil {
			var res client.TaskListResult
			res, err = cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", svc)})
			for _, task := range res.Items {
				if task.DesiredState == swarm.TaskStateRunning && task.Status.State == swarm.TaskStateRunning && (away == nil || task.NodeID != away.ID) {
					byNode[task.NodeID] = append(byNode[task.NodeID], task)
					count++
				}
			}
		}
		if err == nil && count == want {
			return byNode
		}
		last = fmt.Sprintf("%d running (%v)", count, err)
		select {
		case <-ctx.Done():
			t.Fatalf("%s: want %d tasks running: %s", svc, want, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// busiestWorker returns the worker running most of svc's tasks.
func busiestWorker(t *testing.T, c *swarmtest.Cluster, svc string) *swarmtest.Node {
	t.Helper()
	tasks := waitTasks(t, c, svc, 3, nil)
	best := c.Workers()[0]
	for _, w := range c.Workers() {
		if len(tasks[w.ID]) > len(tasks[best.ID]) {
			best = w
		}
	}
	if len(tasks[best.ID]) == 0 {
		t.Fatalf("no worker runs a task of %s", svc)
	}
	return best
}

// taskAddr returns the task's address on the test's overlay.
func taskAddr(t *testing.T, task swarm.Task) string {
	t.Helper()
	for _, na := range task.NetworksAttachments {
		if na.Network.Spec.Name == overlay && len(na.Addresses) > 0 {
			return na.Addresses[0].Addr().String()
		}
	}
	t.Fatalf("task %s has no address on %s", task.ID, overlay)
	return ""
}

// waitNoTaskContainers waits until n's engine runs no task container.
func waitNoTaskContainers(t *testing.T, c *swarmtest.Cluster, n *swarmtest.Node) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := c.Client(n).ContainerList(t.Context(), client.ContainerListOptions{Filters: client.Filters{}.Add("label", "com.docker.swarm.task.id")})
		if err == nil && len(res.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs task containers a minute after restart: %v (%v)", n.Name, res.Items, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runOn runs whoami with args in a container on node n, attached to the
// test's overlay, and returns its output; it fails t if it exits non-zero.
func runOn(t *testing.T, c *swarmtest.Cluster, n *swarmtest.Node, ref string, args ...string) string {
	t.Helper()
	return output(t, c, n, startOn(t, c, n, ref, args...))
}

// startOn starts whoami with args in a container on node n, attached to
// the test's overlay, and returns its ID. The container is removed when
// the test ends.
func startOn(t *testing.T, c *swarmtest.Cluster, n *swarmtest.Node, ref string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cli := c.Client(n)
	pull, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err == nil {
		err = pull.Wait(ctx)
	}
	if err != nil {
		t.Fatalf("%s: pull %s: %v", n.Name, ref, err)
	}
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: ref, Cmd: args},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(overlay)},
	})
	if err != nil {
		t.Fatalf("%s: create: %v", n.Name, err)
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("%s: start: %v", n.Name, err)
	}
	return created.ID
}

// output waits for container id on n to exit and returns its output; it
// fails t if it exits non-zero.
func output(t *testing.T, c *swarmtest.Cluster, n *swarmtest.Node, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cli := c.Client(n)
	wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		t.Fatalf("%s: wait: %v", n.Name, err)
	}
	logs, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("%s: logs: %v", n.Name, err)
	}
	defer logs.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, logs)
	if code != 0 {
		t.Errorf("%s: whoami exited %d:\n%s", n.Name, code, out.String())
	}
	return out.String()
}

// reachable reads a whoami watch's output: how long after since host
// still answered, when it first failed, and when it answered again (zero
// when it did not).
func reachable(t *testing.T, out, host string, since time.Time) (answered, failed, again time.Duration) {
	t.Helper()
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		ms, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("watch output %q: %v", line, err)
		}
		at := time.UnixMilli(ms).Sub(since)
		switch {
		case at < 0:
		case f[1] == host && failed == 0:
			answered = at
		case f[1] == host && again == 0:
			again = at
		case f[1] != host && failed == 0:
			failed = at
		}
	}
	return answered, failed, again
}

func comm(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	return strings.TrimSpace(string(b))
}
