package deploy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/deploy/notify"
)

// exitCode is the code err carries, read as mage reads it: a plain type
// assertion, no unwrapping.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if c, ok := err.(interface{ ExitStatus() int }); ok {
		return c.ExitStatus()
	}
	return 1
}

// The first line of every change says whether it is a dry run.
func TestFirstLineSaysDryRun(t *testing.T) {
	for _, dry := range []bool{true, false} {
		changes := map[string]func(s *Session) error{
			"deploy": func(s *Session) error {
				return s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v1", DryRun: dry})
			},
			"rollback": func(s *Session) error { return s.Rollback(t.Context(), "", dry) },
			"scale":    func(s *Session) error { return s.Scale(t.Context(), "app", 0, dry) },
			"rotate":   func(s *Session) error { return s.Rotate(t.Context(), "database_url", secret.New("x"), dry) },
		}
		for name, change := range changes {
			s, _, out := testSession(t, 0)
			_ = change(s)
			first, _, _ := strings.Cut(out.String(), "\n")
			want := "[not a dry run: this changes the stack]"
			if dry {
				want = "[dry run: nothing will be changed]"
			}
			if !strings.HasSuffix(first, want) || !strings.Contains(first, " of staging (stack svc)") {
				t.Errorf("%s (dry run %v): first line %q, want it to end %q", name, dry, first, want)
			}
		}
	}
}

// An -image in another repository is refused, and a protected
// environment's tag check still names the tag it was given.
func TestPreflightJudgesTheTagOfAForeignImage(t *testing.T) {
	s, api, out := testSession(t, 0)
	s.Env.Protected = true
	err := s.Deploy(t.Context(), DeployOptions{Image: "other.example/app:latest"})
	if exitCode(err) != ExitRefused {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	for _, w := range []string{
		": release other.example/app:latest (-image)",
		`FAIL  release    -image "other.example/app:latest" is not in environment`,
		`FAIL  image      tag "latest" is not a release tag`,
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output does not say %q:\n%s", w, out.String())
		}
	}
	if len(api.Calls) != 0 {
		t.Errorf("a refused change made calls: %v", api.Calls)
	}
}

// With the endpoint down, the checks that need no engine are still run
// and reported, each on its line; the refusal is one short line, and the
// endpoint's is one line naming the environment, endpoint, cause and fix.
func TestPreflightReportsEveryCheck(t *testing.T) {
	s, api, out := testSession(t, 0)
	api.Err = map[string]error{"Info": errors.New(`error during connect: Get "http://docker.example.com/v1.41/info": command [ssh] has exited: stderr=ssh: Could not resolve hostname staging.example.com: Name or service not known`)}
	s.Env.Protected, s.Env.PromoteFrom = true, "staging"
	s.Git = Git{Changes: []string{"M app/main.go"}}
	err := s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v1", Version: "v1.0.0"})
	if exitCode(err) != ExitRefused {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	text := out.String()
	for _, w := range []string{
		"FAIL  release    give -image or -version, not both",
		"FAIL  tree       1 uncommitted change(s) (M app/main.go)",
		"FAIL  tag        HEAD carries no release tag",
		"FAIL  endpoint   environment staging: the local engine",
		"does not answer: ssh: Could not resolve hostname staging.example.com",
		"skip  swarm      needs the endpoint",
		"skip  lock       needs the endpoint",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("output does not say %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "docker.example.com") {
		t.Errorf("the output names Docker's placeholder host:\n%s", text)
	}
	if e := err.Error(); strings.Contains(e, "\n") || strings.Contains(e, "Could not resolve") || !strings.Contains(e, "nothing was changed") {
		t.Errorf("the refusal repeats the checks or is not one line: %q", e)
	}
	if len(api.Calls) != 0 {
		t.Errorf("a refused change made calls: %v", api.Calls)
	}
}

// A refused preflight takes no lock and changes nothing; the line says so.
func TestRefusedChangeTakesNoLock(t *testing.T) {
	s, api, out := testSession(t, 0)
	err := s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v9"}) // not in the registry
	if exitCode(err) != ExitRefused || !strings.Contains(out.String(), "skip  lock       not taken: a check above failed") {
		t.Fatalf("exit %d: %v\n%s", exitCode(err), err, out.String())
	}
	if names := api.ConfigNames(); len(names) != 0 {
		t.Errorf("configs left: %v", names)
	}
}

// A deploy through the whole pipeline on the fake Swarm: planned, applied,
// converged and recorded with the environments file it was made with.
func TestDeployConverges(t *testing.T) {
	s, api, out := testSession(t, 0)
	s.EnvFile = &envfile.File{Path: "deploy/other.yml", SHA256: "abc123"}
	if err := s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v3"}); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	app, _ := api.Service("svc_app")
	if img := app.Spec.TaskTemplate.ContainerSpec.Image; img != "registry.example/app:v3@"+digestV3 {
		t.Errorf("the app runs %s", img)
	}
	rs, err := ledger.History{API: api, Stack: "svc"}.List(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("records %v %v", rs, err)
	}
	if r := rs[0]; r.Result != ledger.Succeeded || r.Digest != digestV3 || r.EnvFile != "deploy/other.yml" || r.EnvFileSHA256 != "abc123" || !slices.Equal(r.Nodes, []string{"manager1"}) {
		t.Errorf("record %+v", r)
	}
	if names := api.ConfigNames(); len(names) != 1 {
		t.Errorf("the lock was left: %v", names)
	}
}

// A panic after the first change restores the stack, records the change
// and exits 3: its bookkeeping cannot be trusted to be whole.
func TestPanicRestoresAndExitsBroken(t *testing.T) {
	s, api, out := testSession(t, 0)
	panicked := false
	api.OnChange = func(svc *swarm.Service, _ []*swarm.Task) {
		if !panicked && strings.Contains(svc.Spec.TaskTemplate.ContainerSpec.Image, "v3") {
			panicked = true
			panic("a bug")
		}
	}
	err := s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v3"})
	if exitCode(err) != ExitBroken || !strings.Contains(err.Error(), "panic: a bug") {
		t.Fatalf("exit %d: %v\n%s", exitCode(err), err, out.String())
	}
	app, _ := api.Service("svc_app")
	if img := app.Spec.TaskTemplate.ContainerSpec.Image; !strings.Contains(img, digestV2) {
		t.Errorf("after the restore the app runs %s, want v1's digest", img)
	}
	rs, _ := ledger.History{API: api, Stack: "svc"}.List(t.Context())
	if len(rs) != 1 || rs[0].Result != ledger.Failed {
		t.Errorf("records %+v, want one failed", rs)
	}
}

// A record that cannot be written keeps the change's exit code; a change
// that converged stays a success, with a warning.
func TestRecordFailureKeepsTheExitCode(t *testing.T) {
	tests := []struct {
		name string
		out  outcome
		want int
	}{
		{"converged", outcome{Result: ledger.Succeeded}, ExitDeployed},
		{"restored", decide(errors.New("rolled back"), true, false, nil).withError(ledger.Deploy, errors.New("rolled back"), nil), ExitRestored},
		{"not restored", decide(errors.New("x"), true, false, errors.New("stuck")).withError(ledger.Deploy, errors.New("x"), errors.New("stuck")), ExitBroken},
		{"not applied", decide(errors.New("migrations failed"), false, false, nil).withError(ledger.Deploy, errors.New("migrations failed"), nil), ExitRefused},
	}
	for _, tt := range tests {
		s, api, out := testSession(t, 0)
		api.Err = map[string]error{"ConfigCreate": errors.New("raft: no elected cluster leader")}
		err := s.record(ledger.History{API: api, Stack: "svc"}, ledger.Record{Seq: 1}, tt.out)
		if exitCode(err) != tt.want {
			t.Errorf("%s: %v (exit %d), want exit %d", tt.name, err, exitCode(err), tt.want)
		}
		if !strings.Contains(out.String()+errString(err), "no elected cluster leader") {
			t.Errorf("%s: the write's failure is not reported", tt.name)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A change waits up to LockWait for a held lock, then is refused.
func TestHoldLockWaits(t *testing.T) {
	defer func(p time.Duration) { lockPoll = p }(lockPoll)
	lockPoll = 5 * time.Millisecond
	s, api, out := testSession(t, 0)
	l := ledger.Lock{API: api, Stack: "svc"}
	release, err := l.Acquire(t.Context(), ledger.LockInfo{Holder: "ana@laptop", Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.holdLock(t.Context(), "deploy"); !errors.Is(err, ledger.ErrLocked) || exitCode(err) != ExitRefused {
		t.Fatalf("no wait: %v, want ErrLocked at once", err)
	}
	s.LockWait = 30 * time.Millisecond
	start := time.Now()
	if _, err := s.holdLock(t.Context(), "deploy"); !errors.Is(err, ledger.ErrLocked) || time.Since(start) < s.LockWait {
		t.Fatalf("held throughout: %v after %s, want ErrLocked after %s", err, time.Since(start), s.LockWait)
	}
	if !strings.Contains(out.String(), "Waiting up to 30ms for the lock") || !strings.Contains(out.String(), "ana@laptop") {
		t.Errorf("the wait is not announced with its holder:\n%s", out.String())
	}
	s.LockWait = time.Minute
	time.AfterFunc(20*time.Millisecond, func() { _ = release(context.Background()) })
	unlock, err := s.holdLock(t.Context(), "deploy")
	if err != nil {
		t.Fatalf("released while waiting: %v", err)
	}
	if held, _ := l.Read(t.Context()); held == nil || held.Holder != "ann@laptop" {
		t.Errorf("the lock is held by %v, want ann@laptop", held)
	}
	unlock()
}

// webhook is a local HTTP server standing in for a chat or incident
// webhook: it keeps every event it is sent, in order.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	events []string
	hang   chan struct{}
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.events = append(w.events, string(body))
		hang := w.hang
		w.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.events...)
}

// A change sends start, then success, with the change's facts; a webhook
// that hangs holds it no longer than its timeout.
func TestChangeNotifies(t *testing.T) {
	w := newWebhook(t)
	s, _, out := testSession(t, 1)
	s.Env.Notify = &envfile.Notify{URLEnv: "HOOK", Timeout: time.Second}
	s.Webhook = secret.New(w.URL + "/hook/T0K3N")
	if err := s.Scale(t.Context(), "app", 0, false); err != nil {
		t.Fatalf("scale: %v\n%s", err, out.String())
	}
	got := w.got()
	if len(got) != 2 || !strings.Contains(got[0], `"event":"start"`) || !strings.Contains(got[1], `"event":"success"`) ||
		!strings.Contains(got[1], `"action":"scale"`) || !strings.Contains(got[1], `"who":"ann@laptop"`) {
		t.Fatalf("events %q", got)
	}

	hanging := newWebhook(t)
	hanging.hang = make(chan struct{})
	defer close(hanging.hang)
	s, _, out = testSession(t, 1)
	s.Env.Notify = &envfile.Notify{URLEnv: "HOOK", Timeout: 300 * time.Millisecond}
	s.Webhook = secret.New(hanging.URL + "/hook/T0K3N")
	start := time.Now()
	if err := s.Scale(t.Context(), "app", 0, false); err != nil {
		t.Fatalf("scale: %v\n%s", err, out.String())
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a hanging webhook held the change %s (timeout 300ms)", took)
	}
	if !strings.Contains(out.String(), "warning: notify: the start event was not delivered") || strings.Contains(out.String(), "T0K3N") {
		t.Errorf("output:\n%s", out.String())
	}
	_ = notify.Start
}

// A Swarm that lost quorum answers Info on its surviving manager but
// refuses what needs its Raft store: preflight says so, and nothing changes.
func TestLostQuorumIsRefused(t *testing.T) {
	s, api, out := testSession(t, 0)
	api.Err = map[string]error{"NodeList": errors.New("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online.")}
	err := s.Scale(t.Context(), "app", 1, false)
	if exitCode(err) != ExitRefused || !strings.Contains(out.String(), "has lost quorum: it has no leader") {
		t.Fatalf("exit %d: %v\n%s", exitCode(err), err, out.String())
	}
	if len(api.Calls) != 0 {
		t.Errorf("changes made without quorum: %v", api.Calls)
	}
}

// Two of three managers unreachable: refused at preflight, however
// promptly the surviving one still answers.
func TestUnreachableManagersAreLostQuorum(t *testing.T) {
	s, api, out := testSession(t, 0)
	manager := func(id string, r swarm.Reachability) swarm.Node {
		return swarm.Node{ID: id, Description: swarm.NodeDescription{Hostname: id}, Status: swarm.NodeStatus{State: swarm.NodeStateReady},
			Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive}, ManagerStatus: &swarm.ManagerStatus{Reachability: r}}
	}
	api.Nodes = []swarm.Node{manager("m1", swarm.ReachabilityReachable), manager("m2", swarm.ReachabilityUnreachable), manager("m3", swarm.ReachabilityUnreachable)}
	err := s.Scale(t.Context(), "app", 1, false)
	if exitCode(err) != ExitRefused || !strings.Contains(out.String(), "has lost quorum: 1 of its 3 managers are reachable") {
		t.Fatalf("exit %d: %v\n%s", exitCode(err), err, out.String())
	}
	api.Nodes[1].ManagerStatus.Reachability = swarm.ReachabilityReachable
	out.Reset()
	if err := s.Scale(t.Context(), "app", 1, true); err != nil {
		t.Fatalf("two of three reachable: %v\n%s", err, out.String())
	}
}

// Several managers: the change says which it uses and which it passed over.
func TestEndpointLineNamesTheFailover(t *testing.T) {
	s, _, out := testSession(t, 0)
	s.Choose = func(context.Context) (endpoint.Endpoint, []string) {
		return endpoint.Endpoint{Host: "ssh://m2"}, []string{"ssh://m1 does not answer: connection refused"}
	}
	if err := s.Scale(t.Context(), "app", 0, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ok    endpoint   ssh://m2 answers (Docker fake); passed over: ssh://m1 does not answer: connection refused") {
		t.Errorf("output:\n%s", out.String())
	}
}

// A manager that cannot read its own Swarm (no leader: the engine puts the
// reason in Info's Swarm.Error, or its Raft reads time out) is a lost
// quorum too: refused at preflight, nothing changed.
func TestLeaderlessManagerIsLostQuorum(t *testing.T) {
	tests := []struct {
		name string
		set  func(api *fakeswarm.Engine)
	}{
		{"Info says the Swarm has no leader", func(api *fakeswarm.Engine) {
			info, _ := api.Info(t.Context(), client.InfoOptions{})
			info.Info.Swarm.Error = "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online."
			api.SystemInfo = &info.Info
		}},
		{"the Raft store does not answer in time", func(api *fakeswarm.Engine) {
			api.Err = map[string]error{"NodeList": errors.New("rpc error: code = DeadlineExceeded desc = context deadline exceeded")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api, out := testSession(t, 0)
			tt.set(api)
			err := s.Scale(t.Context(), "app", 1, false)
			if exitCode(err) != ExitRefused || !strings.Contains(out.String(), "has lost quorum: it has no leader") {
				t.Fatalf("exit %d: %v\n%s", exitCode(err), err, out.String())
			}
			if len(api.Calls) != 0 {
				t.Errorf("changes made without quorum: %v", api.Calls)
			}
		})
	}
}
