package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy"
	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// newStack makes a stack of the test's own with its secrets, returns its
// environments file, and removes the stack when the test ends.
func newStack(t testing.TB, f *fixture, password string, envs ...envSpec) string {
	t.Helper()
	for _, e := range envs {
		f.createSecrets(t, e.Stack, password)
		t.Cleanup(func() { f.removeStack(t, e.Stack) })
	}
	return f.writeEnv(t.Name(), envs...)
}

// expect runs a target and checks its exit code.
func expect(t testing.TB, f *fixture, envFile string, code int, args ...string) string {
	t.Helper()
	start := time.Now()
	out, got := f.runTarget(t.Context(), envFile, nil, args...)
	t.Logf("%s: exit %d in %s", strings.Join(args, " "), got, time.Since(start).Round(100*time.Millisecond))
	if got != code {
		t.Fatalf("%s exited %d, want %d:\n%s", strings.Join(args, " "), got, code, out)
	}
	return out
}

func history(t testing.TB, f *fixture, stack string) []ledger.Record {
	t.Helper()
	rs, err := ledger.History{API: f.cli, Stack: stack}.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// onDigest checks that the service's spec and every running task are on
// the digest.
func onDigest(t testing.TB, f *fixture, service, digest string) {
	t.Helper()
	r, err := f.cli.ServiceInspect(t.Context(), service, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := deploy.ImageOf(r.Service.Spec).Digest; got != digest {
		t.Errorf("%s's spec runs %s, want %s", service, got, digest)
	}
	tasks := f.taskDigests(t, service)
	if len(tasks) == 0 {
		t.Errorf("%s has no running task", service)
	}
	for _, d := range tasks {
		if d != digest {
			t.Errorf("a task of %s runs %s, want %s (tasks: %v)", service, d, digest, tasks)
		}
	}
}

// Scenarios 1, 4, 5, 9 and 10: a release replaces another under load; two
// rollbacks toggle; rollbackTo goes to any release; scale up and down; the
// bad arguments are refused; dry runs change nothing; and the canary
// password shows up nowhere.
func TestE2EDeployRollbackScaleUnderLoad(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2e1" + unique()[:4]
	canary := "canary" + unique()
	env := newStack(t, f, canary, envSpec{Name: "e2e", Stack: stack})
	app := stack + "_app"

	out := expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if !strings.Contains(out, "Migrations: done") {
		t.Errorf("the first deploy ran no migration:\n%s", out)
	}
	onDigest(t, f, app, f.digests["v1.0.0"])

	t.Run("1 v1 to v2 under load", func(t *testing.T) {
		load := f.startLoad(t, stack)
		time.Sleep(3 * time.Second)
		expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		time.Sleep(2 * time.Second)
		zeroFailures(t, load.Stop(t))
		onDigest(t, f, app, f.digests["v2.0.0"])
		if rs := history(t, f, stack); rs[0].Result != ledger.Succeeded || rs[0].Version != "v2.0.0" || rs[0].Digest != f.digests["v2.0.0"] {
			t.Errorf("newest record %+v, want a succeeded deploy of v2.0.0", rs[0])
		}
	})

	t.Run("10 dry runs change nothing", func(t *testing.T) {
		before := f.snapshot(t, stack)
		for _, args := range [][]string{
			{"deploy:to", "e2e", "-image=" + f.repo + ":v1.0.0", "-dryrun"},
			{"deploy:rollback", "e2e", "-dryrun"},
			{"deploy:rollbackTo", "e2e", "v1.0.0", "-dryrun"},
			{"deploy:scale", "e2e", "app", "3", "-dryrun"},
		} {
			out := expect(t, f, env, 0, args...)
			if !strings.Contains(out, "Dry run: nothing was changed.") {
				t.Errorf("%v did not say it was a dry run:\n%s", args, out)
			}
		}
		if after := f.snapshot(t, stack); after != before {
			t.Errorf("a dry run changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("4 rollback and rollbackTo under load", func(t *testing.T) {
		load := f.startLoad(t, stack)
		time.Sleep(2 * time.Second)
		expect(t, f, env, 0, "deploy:rollback", "e2e")
		onDigest(t, f, app, f.digests["v1.0.0"])
		expect(t, f, env, 0, "deploy:rollback", "e2e")
		onDigest(t, f, app, f.digests["v2.0.0"])
		expect(t, f, env, 0, "deploy:rollbackTo", "e2e", "v1.0.0")
		onDigest(t, f, app, f.digests["v1.0.0"])
		first := history(t, f, stack)
		n := first[len(first)-1].Seq // the v2 deploy is #2 of this stack
		expect(t, f, env, 0, "deploy:rollbackTo", "e2e", fmt.Sprintf("#%d", n+1))
		onDigest(t, f, app, f.digests["v2.0.0"])
		time.Sleep(2 * time.Second)
		zeroFailures(t, load.Stop(t))
		rs := history(t, f, stack)
		if rs[0].Action != "rollback" || rs[0].Target != n+1 || rs[0].Result != ledger.Succeeded {
			t.Errorf("newest record %+v, want a succeeded rollback to #%d", rs[0], n+1)
		}
		for _, bad := range []string{"#999", "v9.9.9", "nonsense"} {
			out := expect(t, f, env, 1, "deploy:rollbackTo", "e2e", bad)
			if !strings.Contains(out, "history") && !strings.Contains(out, "recorded") {
				t.Errorf("rollbackTo %s: the refusal does not point at the history:\n%s", bad, out)
			}
		}
	})

	t.Run("5 scale under load", func(t *testing.T) {
		load := f.startLoad(t, stack)
		time.Sleep(2 * time.Second)
		for _, n := range []string{"4", "1", "2"} {
			expect(t, f, env, 0, "deploy:scale", "e2e", "app", n)
			if got := len(f.taskDigests(t, app)); fmt.Sprint(got) != n {
				t.Errorf("after scaling to %s, %d tasks run", n, got)
			}
		}
		time.Sleep(2 * time.Second)
		zeroFailures(t, load.Stop(t))
		before := f.snapshot(t, stack)
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"deploy:scale", "e2e", "app", "-1"}, "FAIL  replicas   -1: want 0 or more"},
			{[]string{"deploy:scale", "e2e", "app", "two"}, `"two"`},
			{[]string{"deploy:scale", "e2e", "app", "5"}, "at most 4"},
			{[]string{"deploy:scale", "e2e", "nosuch", "2"}, `no service "nosuch"`},
		} {
			if out := expect(t, f, env, 1, c.args...); !strings.Contains(out, c.want) {
				t.Errorf("%v: the refusal does not say %q:\n%s", c.args, c.want, out)
			}
		}
		if after := f.snapshot(t, stack); after != before {
			t.Errorf("a refused scale changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if rs := history(t, f, stack); rs[0].Action != "scale" || *rs[0].Services["app"].Replicas != 2 {
			t.Errorf("newest record %+v, want the scale to 2", rs[0])
		}
	})

	t.Run("9 the canary password shows nowhere", func(t *testing.T) {
		logs := expect(t, f, env, 0, "deploy:logs", "e2e", "-since=30m")
		expect(t, f, env, 0, "deploy:status", "e2e")
		expect(t, f, env, 0, "deploy:history", "e2e")
		if !strings.Contains(logs, "app.") {
			t.Errorf("deploy:logs shows no task-prefixed line:\n%s", logs)
		}
		f.notShown(t, stack, canary)
	})
}

// notShown fails t where value shows: in anything the targets printed
// (deploy:logs included), the stack's records, or any service's inspect.
func (f *fixture) notShown(t testing.TB, stack, value string) {
	t.Helper()
	f.mu.Lock()
	places := map[string]string{"the targets' output": f.outputs.String()}
	f.mu.Unlock()
	for _, r := range history(t, f, stack) {
		b, _ := json.Marshal(r)
		places[fmt.Sprintf("record #%d", r.Seq)] = string(b)
	}
	ss, err := f.cli.ServiceList(t.Context(), client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss.Items {
		r, err := f.cli.ServiceInspect(t.Context(), s.ID, client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		places["docker service inspect "+s.Spec.Name] = string(r.Raw)
	}
	for where, text := range places {
		if strings.Contains(text, value) {
			t.Errorf("the secret's value appears in %s", where)
		}
	}
}

// targetRun is one run of a target.
type targetRun struct {
	out  string
	code int
}

// twoAtOnce runs a target twice at the same moment and returns the run that
// exited 0 and the one that exited 1; any other pair fails t.
func (f *fixture) twoAtOnce(t testing.TB, env string, args ...string) (ok, refused targetRun) {
	t.Helper()
	results := make(chan targetRun, 2)
	for range 2 {
		go func() {
			out, code := f.runTarget(t.Context(), env, nil, args...)
			results <- targetRun{out, code}
		}()
	}
	ok, refused = <-results, <-results
	if ok.code != 0 {
		ok, refused = refused, ok
	}
	if ok.code != 0 || refused.code != 1 {
		t.Fatalf("exit codes %d and %d, want one 0 and one 1:\n%s\n----\n%s", ok.code, refused.code, ok.out, refused.out)
	}
	return ok, refused
}

// Scenario 2: a release whose health check fails. Swarm rolls it back; the
// deploy says so (exit 2), every service is on v1's digest, and no request
// failed.
func TestE2EFailedHealthCheckRollsBack(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2e2" + unique()[:4]
	env := newStack(t, f, "pw"+unique(), envSpec{Name: "e2e", Stack: stack})
	expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")

	load := f.startLoad(t, stack)
	time.Sleep(2 * time.Second)
	out := expect(t, f, env, 2, "deploy:to", "e2e", "-image="+f.repo+":bad")
	time.Sleep(2 * time.Second)
	zeroFailures(t, load.Stop(t))
	if !strings.Contains(out, "Swarm rolled the update back") {
		t.Errorf("the output does not say Swarm rolled back:\n%s", out)
	}
	for name, digest := range f.serviceImages(t, stack) {
		if name == "app" && digest != f.digests["v1.0.0"] {
			t.Errorf("app runs %s after the failed deploy, want v1's %s", digest, f.digests["v1.0.0"])
		}
	}
	onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
	rs := history(t, f, stack)
	if rs[0].Result != ledger.RolledBack || !strings.Contains(rs[0].Reason, "rolled") {
		t.Errorf("newest record %+v, want rolled back with Swarm's reason", rs[0])
	}
}

// workerOverride adds a second service running the release's repository,
// whose image comes from the deployer's environment: it can fail alone.
const workerOverride = `version: "3.9"
services:
  worker:
    image: ${WORKER_IMAGE}
    environment:
      APP_ENV: staging
    secrets:
      - database_url
    networks:
      - internal
    deploy:
      replicas: 1
      update_config:
        failure_action: rollback
        order: start-first
        delay: 1s
        monitor: 8s
`

// Scenario 3: in a two-service stack only the second service's update
// fails; the first, whose update went through, is put back too, under
// load, with no failed request.
func TestE2EWholeStackRollback(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2e3" + unique()[:4]
	worker := filepath.Join(f.tmp, stack+"-worker.yml")
	if err := os.WriteFile(worker, []byte(workerOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	env := newStack(t, f, "pw"+unique(), envSpec{Name: "e2e", Stack: stack, Files: []string{worker},
		Variables: map[string]string{"WORKER_IMAGE": "${E2E_WORKER_IMAGE}"}})
	run := func(code int, workerImage string, args ...string) string {
		t.Helper()
		out, got := f.runTarget(t.Context(), env, []string{"E2E_WORKER_IMAGE=" + f.repo + ":" + workerImage}, args...)
		if got != code {
			t.Fatalf("%v exited %d, want %d:\n%s", args, got, code, out)
		}
		return out
	}
	run(0, "v1.0.0", "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	load := f.startLoad(t, stack)
	time.Sleep(2 * time.Second)
	out := run(2, "bad", "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	time.Sleep(2 * time.Second)
	zeroFailures(t, load.Stop(t))
	if !strings.Contains(out, "worker") {
		t.Errorf("the failure does not name the worker:\n%s", out)
	}
	onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
	onDigest(t, f, stack+"_worker", f.digests["v1.0.0"])
}

// Scenario 6: two deploys at once, exactly one proceeds; a deploy killed
// with SIGKILL leaves its lock, which deploy:lock shows and deploy:unlock
// -force clears; a deploy interrupted with Ctrl-C restores the stack.
func TestE2ELockAndInterrupts(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2e6" + unique()[:4]
	env := newStack(t, f, "pw"+unique(), envSpec{Name: "e2e", Stack: stack})
	expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")

	t.Run("two at once", func(t *testing.T) {
		_, refused := f.twoAtOnce(t, env, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		if !strings.Contains(refused.out, "locked: held by") {
			t.Errorf("the refused deploy does not name the lock's holder:\n%s", refused.out)
		}
	})

	t.Run("SIGKILL leaves the lock", func(t *testing.T) {
		cmd := f.command(t.Context(), env, nil, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, &out, "Waiting for", time.Minute)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		lock := expect(t, f, env, 0, "deploy:lock", "e2e")
		if !strings.Contains(lock, "held by") || !strings.Contains(lock, "deploy to e2e") {
			t.Errorf("deploy:lock says %q, want the killed deploy as holder", lock)
		}
		expect(t, f, env, 1, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		refused := expect(t, f, env, 1, "deploy:unlock", "e2e")
		if !strings.Contains(refused, "-force") {
			t.Errorf("unlock of a young lock does not mention -force:\n%s", refused)
		}
		expect(t, f, env, 0, "deploy:unlock", "e2e", "-force")
		if got := expect(t, f, env, 0, "deploy:lock", "e2e"); !strings.Contains(got, "free") {
			t.Errorf("after unlock -force, deploy:lock says %q", got)
		}
		// Swarm finishes the killed deploy's update on its own; a deploy
		// of the same release then has nothing to change.
		waitConverged(t, f, stack+"_app")
		expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
		onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
	})

	t.Run("Ctrl-C restores", func(t *testing.T) {
		cmd := f.command(t.Context(), env, nil, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, &out, "updated service", time.Minute)
		time.Sleep(2 * time.Second)
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		f.keep(out.String())
		if code != 2 {
			t.Fatalf("an interrupted deploy exited %d (%v), want 2:\n%s", code, err, out.String())
		}
		onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
		if rs := history(t, f, stack); rs[0].Result != ledger.RolledBack || !strings.Contains(rs[0].Reason, "interrupted") {
			t.Errorf("newest record %+v, want rolled back, interrupted", rs[0])
		}
	})
}

// impossibleOverride asks for more memory than any node has: the new task
// can never be placed.
const impossibleOverride = `version: "3.9"
services:
  app:
    deploy:
      resources:
        reservations:
          memory: 100000G
`

// Scenario 7: a release that can never start fails with the task's error
// and the stack is restored.
func TestE2EUnplaceableReleaseIsRestored(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2e7" + unique()[:4]
	env := newStack(t, f, "pw"+unique(), envSpec{Name: "e2e", Stack: stack, Deadline: "1m"})
	expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	impossible := filepath.Join(f.tmp, stack+"-impossible.yml")
	if err := os.WriteFile(impossible, []byte(impossibleOverride), 0o644); err != nil {
		t.Fatal(err)
	}
	env2 := f.writeEnv(t.Name()+"-impossible", envSpec{Name: "e2e", Stack: stack, Deadline: "1m", Files: []string{impossible}})
	out := expect(t, f, env2, 2, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
	if !strings.Contains(out, "no suitable node") {
		t.Errorf("the failure does not give the task's error:\n%s", out)
	}
	onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
}

// Scenario 8: preflight refusals exit 1, list each problem, and change
// nothing.
func TestE2EPreflightRefusals(t *testing.T) {
	f := setup(t)
	stack := "e2e8" + unique()[:4]
	prod := "e2e8p" + unique()[:4]
	env := newStack(t, f, "pw"+unique(),
		envSpec{Name: "e2e", Stack: stack},
		envSpec{Name: "prod", Stack: prod, Protected: true, PromoteFrom: "e2e", Bare: true})
	expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	// Names the tag scheme gives to non-releases, on v1's bytes.
	for _, tag := range []string{"latest", "main", "abc1234-dirty", "abc1234"} {
		if _, err := f.push(t.Context(), f.repo+":v1.0.0", f.repo+":"+tag); err != nil {
			t.Fatal(err)
		}
	}
	noSecrets := f.writeEnv(t.Name()+"-nosecrets", envSpec{Name: "bare", Stack: "e2e8n" + unique()[:4]})

	git := func(args ...string) {
		t.Helper()
		cmd := []string{"-C", f.clone, "-c", "user.name=e2e", "-c", "user.email=e2e@example.com"}
		if out, err := execOutput("git", append(cmd, args...)...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	before := f.snapshot(t, "e2e8")
	for _, c := range []struct {
		name  string
		env   string
		args  []string
		setup func()
		want  []string
	}{
		{"untagged HEAD", env, []string{"deploy:to", "prod", "-image=" + f.repo + ":v1.0.0"}, nil,
			[]string{"HEAD carries no release tag"}},
		{"latest", env, []string{"deploy:to", "prod", "-version=latest"}, func() { git("tag", "v1.0.0") },
			[]string{`"latest" is not a release tag`, "HEAD is v1.0.0"}},
		{"branch", env, []string{"deploy:to", "prod", "-version=main"}, nil, []string{`"main" is not a release tag`}},
		{"dirty", env, []string{"deploy:to", "prod", "-version=abc1234-dirty"}, func() {
			_ = os.WriteFile(filepath.Join(f.clone, "stray.txt"), []byte("x"), 0o644)
		}, []string{`"abc1234-dirty" is not a release tag`, "uncommitted change", "stray.txt"}},
		{"not promoted", env, []string{"deploy:to", "prod", "-version=v2.0.0"}, func() {
			_ = os.Remove(filepath.Join(f.clone, "stray.txt"))
		}, []string{"never served on e2e", "HEAD is v1.0.0 but the image is tagged \"v2.0.0\""}},
		// v2.0.0 is neither HEAD's tag nor promoted: those fail too, and
		// every check is reported, the signature's among them.
		{"unsigned", env, []string{"deploy:to", "prod", "-image=" + f.repo + ":v2.0.0"}, nil, []string{"FAIL  signature  verify: no signature for " + f.repo + "@" + f.digests["v2.0.0"]}},
		{"missing image", env, []string{"deploy:to", "e2e", "-version=v9.9.9"}, nil, []string{"not in the registry"}},
		{"missing secrets", noSecrets, []string{"deploy:to", "bare", "-image=" + f.repo + ":v1.0.0"}, nil,
			[]string{"no version of database_url, postgres_password", "secrets:set bare NAME"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			out := expect(t, f, c.env, 1, c.args...)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, out)
				}
			}
			if !strings.Contains(out, "Preflight:") {
				t.Errorf("no preflight listing:\n%s", out)
			}
		})
	}
	if after := f.snapshot(t, "e2e8"); after != before {
		t.Errorf("refused deploys changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// With HEAD at v1.0.0, clean, and v1's digest deployed on e2e, every
	// protected check passes.
	out := expect(t, f, env, 0, "deploy:to", "prod", "-version=v1.0.0", "-dryrun")
	for _, w := range []string{"ok    tree", "ok    tag", "ok    promoted", "ok    signature  signed by"} {
		if !strings.Contains(out, w) {
			t.Errorf("the protected preflight does not pass %q:\n%s", w, out)
		}
	}
}

// waitConverged waits until every task of the service is current and
// running, with no update in progress.
func waitConverged(t testing.TB, f *fixture, service string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for {
		obs, err := converge.Observe(ctx, f.cli, service)
		if err != nil {
			t.Fatal(err)
		}
		p := converge.Evaluate(converge.Watch{Name: service, Restore: true}, obs)
		if p.Done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not converge: %s", service, p.Line)
		case <-time.After(time.Second):
		}
	}
}
