package deploy_test

// The end-to-end scenarios of deploys that carry data: migrations as a
// gated step, secret rotation, the smoke check and notifications.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/deploy/notify"
)

// serviceVersions are the spec versions of the services whose names start
// with prefix: what a refused change must leave alone.
func (f *fixture) serviceVersions(t testing.TB, prefix string) string {
	t.Helper()
	ss, err := f.cli.ServiceList(t.Context(), client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range ss.Items {
		if strings.HasPrefix(s.Spec.Name, prefix) && s.Spec.Mode.ReplicatedJob == nil {
			lines = append(lines, fmt.Sprintf("%s v%d %s", s.Spec.Name, s.Version.Index, s.Spec.TaskTemplate.ContainerSpec.Image))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// jobsLeft are the job services of a stack still there.
func (f *fixture) jobsLeft(t testing.TB, stack string) []string {
	t.Helper()
	ss, err := f.cli.ServiceList(t.Context(), client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range ss.Items {
		if strings.HasPrefix(s.Spec.Name, stack+"_") && s.Spec.Mode.ReplicatedJob != nil {
			out = append(out, s.Spec.Name)
		}
	}
	return out
}

// schemaState is the version goose recorded and whether the failed
// migration's table exists.
func (f *fixture) schemaState(t testing.TB, stack string) string {
	t.Helper()
	return f.psql(t, stack, `SELECT max(version_id) || ' rows=' || count(*) || ' half_way=' ||
		(SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_way') FROM goose_db_version;`)
}

var migrationsDone = regexp.MustCompile(`Migrations: done in ([0-9.]+m?s)`)

// Scenario 1 to 3 of the data issue, and schema visibility: the plan and a
// dry run list the pending migration; a migration that fails half-way
// changes nothing (exit 1); two deploys of a release with a migration at
// once under load: one migrates, once, before the rollout, and no request
// fails; deploy:status and db:status -env show the schema; a rollback
// leaves the database ahead, never migrating down.
func TestE2EMigrations(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2e9" + unique()[:4]
	env := newStack(t, f, "pw"+unique(), envSpec{Name: "e2e", Stack: stack, Smoke: "{service: app, timeout: 30s}"})
	v3, bad := f.release(t, "v3.0.0"), f.release(t, "badmig")
	app := stack + "_app"
	expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	if got := f.schemaState(t, stack); got != "2 rows=3 half_way=0" {
		t.Fatalf("after v1: %s", got)
	}

	t.Run("dry run lists the pending migration", func(t *testing.T) {
		before := f.snapshot(t, stack)
		out := expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v3.0.0", "-dryrun")
		for _, w := range []string{"migrations  1 pending", "00003_add_tags.sql", "Dry run: nothing was changed."} {
			if !strings.Contains(out, w) {
				t.Errorf("the dry run does not say %q:\n%s", w, out)
			}
		}
		if after := f.snapshot(t, stack); after != before {
			t.Errorf("the dry run changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if jobs := f.jobsLeft(t, stack); len(jobs) > 0 {
			t.Errorf("the dry run left jobs: %v", jobs)
		}
	})

	t.Run("a migration that fails half-way changes nothing", func(t *testing.T) {
		services, schema := f.serviceVersions(t, stack+"_"), f.schemaState(t, stack)
		out := expect(t, f, env, 1, "deploy:to", "e2e", "-image="+f.repo+":badmig")
		for _, w := range []string{"00003_half_way.sql failed and was rolled back", "division by zero", "stopped before any service changed"} {
			if !strings.Contains(out, w) {
				t.Errorf("the failed deploy does not say %q:\n%s", w, out)
			}
		}
		if got := f.serviceVersions(t, stack+"_"); got != services {
			t.Errorf("a service changed:\nbefore:\n%s\nafter:\n%s", services, got)
		}
		if got := f.schemaState(t, stack); got != schema {
			t.Errorf("schema and version: %s, want %s as before", got, schema)
		}
		if jobs := f.jobsLeft(t, stack); len(jobs) > 0 {
			t.Errorf("the migration job is still there: %v", jobs)
		}
		onDigest(t, f, app, f.digests["v1.0.0"])
		if rs := history(t, f, stack); rs[0].Result != ledger.NotApplied || rs[0].Digest != bad || !strings.Contains(rs[0].Reason, "division by zero") {
			t.Errorf("newest record %+v, want not applied with the migration's error", rs[0])
		}
	})

	t.Run("two deploys with a migration at once under load: one migrates, once, first", func(t *testing.T) {
		load := f.startLoad(t, stack)
		time.Sleep(3 * time.Second)
		a, b := f.twoAtOnce(t, env, "deploy:to", "e2e", "-image="+f.repo+":v3.0.0")
		time.Sleep(2 * time.Second)
		zeroFailures(t, load.Stop(t))
		if !strings.Contains(b.out, "locked: held by") || strings.Contains(b.out, "Migrations:") {
			t.Errorf("the second deploy did not stop at the lock:\n%s", b.out)
		}
		for _, w := range []string{"migrations  1 pending", "up   00003_add_tags.sql", "Smoke check: passed"} {
			if !strings.Contains(a.out, w) {
				t.Errorf("the deploy does not say %q:\n%s", w, a.out)
			}
		}
		migrated, updated := strings.Index(a.out, "Migrations: done"), strings.Index(a.out, "updated service "+app)
		if migrated < 0 || updated < 0 || migrated > updated {
			t.Errorf("the migration did not run before the app's update (at %d and %d):\n%s", migrated, updated, a.out)
		}
		if m := migrationsDone.FindStringSubmatch(a.out); m != nil {
			t.Logf("figure: the migration job took %s", m[1])
		}
		if m := regexp.MustCompile(`asked in ([0-9.]+m?s)`).FindStringSubmatch(a.out); m != nil {
			t.Logf("figure: the plan's status job took %s", m[1])
		}
		if got := f.psql(t, stack, "SELECT count(*) FROM goose_db_version WHERE version_id = 3;"); got != "1" {
			t.Errorf("version 3 is recorded %s times, want once", got)
		}
		r, err := f.cli.ServiceInspect(t.Context(), app, client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// goose's tstamp is a timestamp in the server's zone, UTC here.
		applied := f.psql(t, stack, "SELECT extract(epoch FROM tstamp)::text FROM goose_db_version WHERE version_id = 3;")
		sec, err := strconv.ParseFloat(applied, 64)
		at := time.Unix(0, int64(sec*1e9))
		if st := r.Service.UpdateStatus; err != nil || st == nil || st.StartedAt == nil || !at.Before(*st.StartedAt) {
			t.Errorf("migration applied at %s (%v), the app's update started %+v: want the migration first", applied, err, r.Service.UpdateStatus)
		}
		onDigest(t, f, app, v3)
	})

	t.Run("status shows the schema each task expects and finds", func(t *testing.T) {
		out := expect(t, f, env, 0, "deploy:status", "e2e")
		if n := len(regexp.MustCompile(`(?m)^app\s+\S+:8080\s+v3\.0\.0\s+3\s+3\s+in step$`).FindAllString(out, -1)); n != 2 {
			t.Errorf("deploy:status shows %d tasks of v3.0.0 in step with the schema, want 2:\n%s", n, out)
		}
		out = expect(t, f, env, 0, "db:status", "-env=e2e")
		if !strings.Contains(out, "applied  00003_add_tags.sql") {
			t.Errorf("db:status -env=e2e:\n%s", out)
		}
		if jobs := f.jobsLeft(t, stack); len(jobs) > 0 {
			t.Errorf("jobs left: %v", jobs)
		}
	})

	t.Run("a rollback never migrates down", func(t *testing.T) {
		out := expect(t, f, env, 0, "deploy:rollback", "e2e")
		if strings.Contains(out, "Migrations") || strings.Contains(out, "migrations") {
			t.Errorf("the rollback mentions migrations:\n%s", out)
		}
		onDigest(t, f, app, f.digests["v1.0.0"])
		if got := f.schemaState(t, stack); !strings.HasPrefix(got, "3 ") {
			t.Errorf("after the rollback the database is at %s, want still 3", got)
		}
		out = expect(t, f, env, 0, "deploy:status", "e2e")
		if !regexp.MustCompile(`v1\.0\.0\s+2\s+3\s+ahead`).MatchString(out) {
			t.Errorf("deploy:status does not show v1 behind the database:\n%s", out)
		}
	})
}

// webhookRecorder is a webhook on loopback that the targets, run as
// processes, POST to; it can be made to hang.
type webhookRecorder struct {
	*httptest.Server
	mu     sync.Mutex
	events []notify.Event
	hang   bool
	stop   chan struct{}
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	w := &webhookRecorder{stop: make(chan struct{})}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var e notify.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			t.Errorf("webhook: %v", err)
		}
		w.mu.Lock()
		w.events = append(w.events, e)
		hang := w.hang
		w.mu.Unlock()
		if hang {
			select {
			case <-w.stop:
			case <-r.Context().Done():
			}
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(w.stop); w.Close() })
	return w
}

// take returns the events received so far and forgets them.
func (w *webhookRecorder) take() []notify.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.events
	w.events = nil
	return out
}

func kinds(es []notify.Event) []notify.Kind {
	var out []notify.Kind
	for _, e := range es {
		out = append(out, e.Event)
	}
	return out
}

// redisNowhere makes every task's /ready fail (Redis refuses) while /health
// passes: the release converges, and only the smoke check can tell.
const redisNowhere = `version: "3.9"
services:
  app:
    environment:
      REDIS_URL: redis://127.0.0.1:1
`

// Scenario 5 and 6: a release whose smoke check fails is restored (exit 2,
// recorded with the reason); the webhook gets start and success, then start
// and rollback, with the change's facts; a webhook that hangs holds a
// deploy no longer than its timeout and never shows its URL.
func TestE2ESmokeCheckAndNotifications(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2ea" + unique()[:4]
	hook := newWebhookRecorder(t)
	url := hook.URL + "/hooks/T0K3N" + unique()
	spec := envSpec{Name: "e2e", Stack: stack, Smoke: "{service: app, timeout: 15s}", Notify: "{url_env: E2E_WEBHOOK_URL, timeout: 2s}"}
	env := newStack(t, f, "pw"+unique(), spec)
	withHook := []string{"E2E_WEBHOOK_URL=" + url}
	run := func(t *testing.T, envFile string, code int, args ...string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		out, got := f.runTarget(t.Context(), envFile, withHook, args...)
		took := time.Since(start)
		t.Logf("%s: exit %d in %s", strings.Join(args, " "), got, took.Round(100*time.Millisecond))
		if got != code {
			t.Fatalf("%v exited %d, want %d:\n%s", args, got, code, out)
		}
		if strings.Contains(out, "T0K3N") || strings.Contains(out, hook.URL) {
			t.Errorf("the output shows the webhook's URL:\n%s", out)
		}
		return out, took
	}

	run(t, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	es := hook.take()
	if !slices.Equal(kinds(es), []notify.Kind{notify.Start, notify.Success}) {
		t.Fatalf("events %+v, want start and success", es)
	}
	if e := es[1]; e.Environment != "e2e" || e.Stack != stack || e.Action != "deploy" || e.Release != "v1.0.0" ||
		e.Digest != f.digests["v1.0.0"] || !strings.Contains(e.Who, "@") || e.Result != string(ledger.Succeeded) || e.Duration <= 0 || e.Seq != 1 {
		t.Errorf("success event %+v", e)
	}

	t.Run("a failing smoke check restores the stack", func(t *testing.T) {
		override := filepath.Join(f.tmp, stack+"-redis.yml")
		if err := os.WriteFile(override, []byte(redisNowhere), 0o644); err != nil {
			t.Fatal(err)
		}
		s := spec
		s.Files = []string{override}
		envRedis := f.writeEnv(stack+"-redis-env", s)
		out, _ := run(t, envRedis, 2, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		for _, w := range []string{"Smoke check on the stack's network", "smoke check failed", "/ready at", "answered 503", "Restored"} {
			if !strings.Contains(out, w) {
				t.Errorf("the output does not say %q:\n%s", w, out)
			}
		}
		onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
		rs := history(t, f, stack)
		if rs[0].Result != ledger.RolledBack || !strings.Contains(rs[0].Reason, "smoke check failed") {
			t.Errorf("newest record %+v, want rolled back with the smoke check's reason", rs[0])
		}
		es := hook.take()
		if !slices.Equal(kinds(es), []notify.Kind{notify.Start, notify.Rollback}) {
			t.Fatalf("events %+v, want start and rollback", es)
		}
		if e := es[1]; e.Release != "v2.0.0" || e.Result != string(ledger.RolledBack) || !strings.Contains(e.Reason, "smoke check failed") {
			t.Errorf("rollback event %+v", e)
		}
	})

	t.Run("a hanging webhook holds the deploy no longer than its timeout", func(t *testing.T) {
		hook.mu.Lock()
		hook.hang = true
		hook.mu.Unlock()
		out, took := run(t, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		m := regexp.MustCompile(`converged in ([0-9.]+m?s)\.`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no convergence time:\n%s", out)
		}
		converged, _ := time.ParseDuration(m[1])
		t.Logf("figure: with a hanging webhook the deploy took %s, %s beyond its own %s", took.Round(100*time.Millisecond), (took - converged).Round(100*time.Millisecond), converged)
		// What the process does besides the change: start, the record,
		// the notifications' one timeout (2s).
		if extra := took - converged; extra > 2*time.Second+5*time.Second {
			t.Errorf("the deploy took %s beyond its %s of work: a hanging webhook held it", extra, converged)
		}
		if !strings.Contains(out, "warning: notify: the start event was not delivered: no answer within 2s") {
			t.Errorf("no warning for the hanging webhook:\n%s", out)
		}
		if es := hook.take(); len(es) == 0 || es[0].Event != notify.Start {
			t.Errorf("events %+v, want the start event at least", es)
		}
		onDigest(t, f, stack+"_app", f.digests["v2.0.0"])
	})
}

// Scenario 4: the database password is rotated under load, by alternating
// login roles (README, Secrets): ALTER ROLE gives the role no task uses a
// new password inside the stack's Postgres, secrets:rotate moves the app to
// a database_url with it, and the old role's password is revoked once no
// task uses it. No request fails, the services move to the new version, the
// old version is pruned, and the value shows nowhere. Also secrets:set's
// refusals.
func TestE2ESecretRotation(t *testing.T) {
	f := setup(t)
	t.Parallel() // beside the other single-node tests: see setup
	stack := "e2eb" + unique()[:4]
	env := newStack(t, f, "pw"+unique(), envSpec{Name: "e2e", Stack: stack, Smoke: "{service: app, timeout: 30s}"})
	expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v1.0.0")
	pgBefore := f.serviceVersions(t, stack+"_postgres")

	t.Run("set refuses an empty value and an unknown name", func(t *testing.T) {
		before := f.snapshot(t, stack)
		for _, c := range []struct {
			stdin, name, want string
		}{
			{"", "database_url", "the value is empty"},
			{"\n", "database_url", "the value is empty"},
			{"x", "databse_url", `declare no external secret "databse_url"`},
		} {
			out, code := f.runTargetIn(t.Context(), env, nil, strings.NewReader(c.stdin), "secrets:set", "e2e", c.name)
			if code != 1 || !strings.Contains(out, c.want) {
				t.Errorf("secrets:set %s with %q: exit %d, want 1 saying %q:\n%s", c.name, c.stdin, code, c.want, out)
			}
		}
		if after := f.snapshot(t, stack); after != before {
			t.Errorf("a refused secrets:set changed the Swarm:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	canary := "rotated" + unique() + unique()
	// Provisioned once: the second login role, which acts as app (its
	// sessions SET ROLE app, so what they create is app's), with no
	// password yet.
	f.psql(t, stack, "CREATE ROLE app_blue LOGIN IN ROLE app; ALTER ROLE app_blue SET role = 'app';")
	t.Run("rotate the database password under load", func(t *testing.T) {
		load := f.startLoad(t, stack)
		time.Sleep(3 * time.Second)
		// The new password goes to the role no task uses: the old tasks
		// keep connecting as app, the new ones as app_blue.
		f.psql(t, stack, "ALTER ROLE app_blue PASSWORD '"+canary+"';")
		start := time.Now()
		url := strings.Replace(databaseURL(canary), "//app:", "//app_blue:", 1)
		out, code := f.runTargetIn(t.Context(), env, nil, strings.NewReader(url+"\n"), "secrets:rotate", "e2e", "database_url")
		t.Logf("secrets:rotate: exit %d in %s", code, time.Since(start).Round(100*time.Millisecond))
		if code != 0 {
			t.Fatalf("secrets:rotate exited %d:\n%s", code, out)
		}
		// No task uses the old credential now: revoke it, under load.
		f.psql(t, stack, "ALTER ROLE app PASSWORD NULL;")
		time.Sleep(3 * time.Second)
		s := load.Stop(t)
		t.Logf("figure: during the rotation %d requests and %d slow uploads were sent, %d and %d failed", s.Sent, s.SlowSent, s.Failed, s.SlowFailed)
		zeroFailures(t, s)
		for _, w := range []string{"created " + stack + "_database_url_v2", "app move to " + stack + "_database_url_v2", "Smoke check: passed"} {
			if !strings.Contains(out, w) {
				t.Errorf("secrets:rotate does not say %q:\n%s", w, out)
			}
		}
		r, err := f.cli.ServiceInspect(t.Context(), stack+"_app", client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if refs := r.Service.Spec.TaskTemplate.ContainerSpec.Secrets; len(refs) != 1 || refs[0].SecretName != stack+"_database_url_v2" || refs[0].File.Name != "database_url" {
			t.Errorf("the app's secrets after the rotation: %+v", refs)
		}
		if got := f.serviceVersions(t, stack+"_postgres"); got != pgBefore {
			t.Errorf("the rotation touched Postgres:\nbefore %s\nafter  %s", pgBefore, got)
		}
		if rs := history(t, f, stack); rs[0].Action != "rotate" || rs[0].Result != ledger.Succeeded {
			t.Errorf("newest record %+v, want a succeeded rotate", rs[0])
		}
	})

	t.Run("list and prune", func(t *testing.T) {
		out := expect(t, f, env, 0, "secrets:list", "e2e")
		for _, re := range []string{`database_url\s+v2\s+\S+ \S+\s+app\s+newest`, `database_url\s+v1\s+\S+ \S+\s+-`, `postgres_password\s+v1\s+\S+ \S+\s+postgres\s+newest`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("secrets:list does not match %s:\n%s", re, out)
			}
		}
		before := f.snapshot(t, stack)
		if out := expect(t, f, env, 0, "secrets:prune", "e2e", "-keep=1", "-dryrun"); !strings.Contains(out, "remove  "+stack+"_database_url_v1 (would be)") {
			t.Errorf("prune -dryrun:\n%s", out)
		}
		if after := f.snapshot(t, stack); after != before {
			t.Errorf("prune -dryrun changed the Swarm")
		}
		out = expect(t, f, env, 0, "secrets:prune", "e2e", "-keep=1")
		if !strings.Contains(out, "removed "+stack+"_database_url_v1") || !strings.Contains(out, "keep    "+stack+"_postgres_password_v1") {
			t.Errorf("prune:\n%s", out)
		}
		ss, err := f.cli.SecretList(t.Context(), client.SecretListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range ss.Items {
			if strings.HasPrefix(s.Spec.Name, stack+"_") {
				names = append(names, s.Spec.Name)
			}
		}
		slices.Sort(names)
		if want := []string{stack + "_database_url_v2", stack + "_postgres_password_v1"}; !slices.Equal(names, want) {
			t.Errorf("secrets after prune: %v, want %v", names, want)
		}
	})

	t.Run("a rollback keeps the new credential", func(t *testing.T) {
		// #1 recorded the app with database_url_v1, pruned since.
		expect(t, f, env, 0, "deploy:to", "e2e", "-image="+f.repo+":v2.0.0")
		expect(t, f, env, 0, "deploy:rollbackTo", "e2e", "#1")
		onDigest(t, f, stack+"_app", f.digests["v1.0.0"])
		r, err := f.cli.ServiceInspect(t.Context(), stack+"_app", client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if refs := r.Service.Spec.TaskTemplate.ContainerSpec.Secrets; len(refs) != 1 || refs[0].SecretName != stack+"_database_url_v2" {
			t.Errorf("after a rollback to a release recorded with v1, the app uses %+v", refs)
		}
	})

	t.Run("the new value shows nowhere", func(t *testing.T) {
		expect(t, f, env, 0, "deploy:logs", "e2e", "-since=30m")
		f.notShown(t, stack, canary)
	})
}
