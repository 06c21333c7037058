package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// BenchmarkE2EDeploy measures, with the production file's timings (2
// replicas, start-first, 10 s delay, 30 s monitor), a v1 to v2 update and a
// release whose health check fails, through deploy:to and through the
// plain docker CLI (docker stack deploy --detach=false), against what
// Swarm itself reports (UpdateStatus start and completion). Run it with
// go tool mage bench:deploy (TEST_SWARM=1); it prints a table.
func BenchmarkE2EDeploy(b *testing.B) {
	f := setup(b)
	ctx := b.Context()
	type row struct {
		name                 string
		wall, swarm, afterUp time.Duration
		end                  time.Time
		state                string
		code                 int
		sent, failed         int64
	}
	var rows []row
	measure := func(name, service string, run func() int) row {
		b.Helper()
		before := f.updateStatus(b, service)
		start := time.Now()
		code := run()
		end := time.Now()
		st := f.updateStatus(b, service)
		r := row{name: name, wall: end.Sub(start), code: code, end: end}
		if st != nil && st.StartedAt != nil && (before == nil || before.StartedAt == nil || !st.StartedAt.Equal(*before.StartedAt)) {
			r.state = string(st.State)
			if st.CompletedAt != nil {
				r.swarm = st.CompletedAt.Sub(*st.StartedAt)
				r.afterUp = end.Sub(*st.CompletedAt)
			}
		}
		return r
	}

	// Ours.
	stack := "e2eb" + unique()[:4]
	env := newStack(b, f, "pw"+unique(), envSpec{Name: "bench", Stack: stack, Production: true, Deadline: "5m"})
	expect(b, f, env, 0, "deploy:to", "bench", "-image="+f.repo+":v1.0.0")
	for _, c := range []struct{ name, image string }{{"deploy:to v1 -> v2", "v2.0.0"}, {"deploy:to v2 -> bad (rolled back)", "bad"}} {
		load := f.startLoad(b, stack)
		time.Sleep(3 * time.Second)
		r := measure(c.name, stack+"_app", func() int {
			_, code := f.runTarget(ctx, env, nil, "deploy:to", "bench", "-image="+f.repo+":"+c.image)
			return code
		})
		time.Sleep(2 * time.Second)
		s := load.Stop(b)
		r.sent, r.failed = s.Sent+s.SlowSent, s.Failed+s.SlowFailed
		rows = append(rows, r)
	}

	// The docker CLI, same files, same machine override, a stack of its own.
	cli := "e2ec" + unique()[:4]
	password := "pw" + unique()
	for name, value := range map[string]string{
		"postgres_password": password,
		"database_url":      "postgres://app:" + password + "@postgres:5432/app?sslmode=disable",
	} {
		// docker stack deploy uses the file's secret names as they are.
		if _, err := f.cli.SecretCreate(ctx, client.SecretCreateOptions{Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: name}, Data: []byte(value)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { f.removeStack(b, cli) })
	machine := filepath.Join(f.tmp, "swarm-machine.yml")
	stackDeploy := func(image string) int {
		cmd := exec.CommandContext(ctx, "docker", "stack", "deploy", "--detach=false", "--resolve-image", "never",
			"-c", "docker-compose.prod.yml", "-c", machine, cli)
		cmd.Dir = f.clone
		cmd.Env = append(os.Environ(), "REGISTRY="+f.registry, "IMAGE_NAME=e2e-app", "IMAGE_TAG="+f.images[image],
			"APP_ENV=staging", "POSTGRES_IMAGE="+f.postgres, "APP_HOST="+cli+".e2e.test", "ROUTER="+cli)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		_ = cmd.Run()
		return cmd.ProcessState.ExitCode()
	}
	if code := stackDeploy("v1.0.0"); code != 0 {
		b.Fatalf("docker stack deploy v1 exited %d", code)
	}
	f.migrate(b, cli, password)
	for _, c := range []struct{ name, image string }{{"docker stack deploy v1 -> v2", "v2.0.0"}, {"docker stack deploy v2 -> bad", "bad"}} {
		load := f.startLoad(b, cli)
		time.Sleep(3 * time.Second)
		r := measure(c.name, cli+"_app", func() int { return stackDeploy(c.image) })
		if r.state == string(swarm.UpdateStateUpdating) || r.state == string(swarm.UpdateStateRollbackStarted) {
			// Returned before Swarm finished: let it finish, then say how
			// early the return was.
			waitConverged(b, f, cli+"_app")
			if st := f.updateStatus(b, cli+"_app"); st != nil && st.StartedAt != nil && st.CompletedAt != nil {
				r.swarm, r.afterUp = st.CompletedAt.Sub(*st.StartedAt), r.end.Sub(*st.CompletedAt)
				r.state += ", then " + string(st.State)
			}
		}
		time.Sleep(2 * time.Second)
		s := load.Stop(b)
		r.sent, r.failed = s.Sent+s.SlowSent, s.Failed+s.SlowFailed
		rows = append(rows, r)
	}

	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "change\twall\tSwarm update\texit - Swarm's end\tSwarm's state at exit\texit code\trequests\tfailed\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.1fs\t%.1fs\t%+.1fs\t%s\t%d\t%d\t%d\t\n", r.name, r.wall.Seconds(), r.swarm.Seconds(), r.afterUp.Seconds(), r.state, r.code, r.sent, r.failed)
	}
	_ = tw.Flush()
	fmt.Print("\n" + out.String() + "\n")
	b.ReportMetric(rows[0].wall.Seconds(), "ours-v2-wall-s")
	b.ReportMetric(rows[0].afterUp.Seconds(), "ours-v2-after-completed-s")
	b.ReportMetric(rows[1].afterUp.Seconds(), "ours-rollback-detect-s")
	b.ReportMetric(rows[2].wall.Seconds(), "cli-v2-wall-s")
	b.ReportMetric(rows[2].afterUp.Seconds(), "cli-v2-after-completed-s")
	b.ReportMetric(rows[3].afterUp.Seconds(), "cli-rollback-detect-s")
}

func (f *fixture) updateStatus(t testing.TB, service string) *swarm.UpdateStatus {
	t.Helper()
	r, err := f.cli.ServiceInspect(t.Context(), service, client.ServiceInspectOptions{})
	if err != nil {
		return nil
	}
	return r.Service.UpdateStatus
}

// migrate applies the migrations to a stack deployed without the deploy
// targets (the docker CLI's), from a container on its network.
func (f *fixture) migrate(t testing.TB, stack, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r, err := f.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: f.repo + ":v1.0.0", Cmd: []string{"migrate", "up"},
			Env: []string{"APP_ENV=staging", "DATABASE_URL=postgres://app:" + password + "@postgres:5432/app?sslmode=disable"}},
		HostConfig:       &container.HostConfig{AutoRemove: false},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{stack + "_internal": {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = f.cli.ContainerRemove(context.Background(), r.ID, client.ContainerRemoveOptions{Force: true})
	}()
	for range 30 { // Postgres may still be starting
		if _, err := f.cli.ContainerStart(ctx, r.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		w := f.cli.ContainerWait(ctx, r.ID, client.ContainerWaitOptions{})
		select {
		case res := <-w.Result:
			if res.StatusCode == 0 {
				return
			}
		case err := <-w.Error:
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatal("migrations of the CLI's stack did not succeed")
}
