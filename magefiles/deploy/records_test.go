package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

func rec(seq int, result, version, sha string) Record {
	return Record{Seq: seq, Result: result, Version: version, GitSHA: sha, Digest: "sha256:" + version,
		Services: map[string]ServiceRecord{"app": {Image: "r/app:" + version}}}
}

func TestPickRollback(t *testing.T) {
	// Newest first, as History.List returns them.
	history := []Record{
		rec(6, RolledBack, "v4", "dddddddd"),
		rec(5, Succeeded, "v3", "cccccccc"),
		rec(4, Succeeded, "v3", "cccccccc"), // a redeploy of the same release
		rec(3, Failed, "v2x", "bbbbbbbb"),
		rec(2, Succeeded, "v2", "bbbbbbbb"),
		rec(1, Succeeded, "v1", "aaaaaaaa"),
	}
	tests := []struct {
		name    string
		records []Record
		to      string
		want    int    // seq
		err     string // substring
	}{
		{name: "previous release, skipping failures and the same release", records: history, want: 2},
		{name: "two rollbacks toggle", records: append([]Record{func() Record { r := rec(7, Succeeded, "v2", "bbbbbbbb"); r.Action = "rollback"; return r }()}, history...), want: 5},
		{name: "after a change left broken, the last release that served", records: append([]Record{rec(7, Failed, "v5", "eeeeeeee")}, history...), want: 5},
		{name: "by #N", records: history, to: "#1", want: 1},
		{name: "#N that failed", records: history, to: "#3", err: "#3 failed: only a successful release"},
		{name: "#N not kept", records: history, to: "#99", err: "#99 is not in the history (kept: #6 #5 #4 #3 #2 #1)"},
		{name: "by version", records: history, to: "v1", want: 1},
		{name: "by git sha prefix", records: history, to: "bbbbbbb", want: 2},
		{name: "a sha prefix too short to trust", records: history, to: "bbb", err: "no successful deploy"},
		{name: "unknown", records: history, to: "v9", err: `no successful deploy of "v9"`},
		{name: "nothing recorded", err: "nothing to roll back to"},
		{name: "only the current release", records: []Record{rec(2, Succeeded, "v1", "a"), rec(1, Succeeded, "v1", "a")}, err: "no earlier one"},
		{name: "not a number", records: history, to: "#x", err: "want #N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickRollback(tt.records, tt.to)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != tt.want {
				t.Errorf("picked #%d, want #%d", got.Seq, tt.want)
			}
		})
	}
}

func TestLock(t *testing.T) {
	api := newFakeSwarm()
	l := Lock{API: api, Stack: "svc"}
	ctx := t.Context()
	release, err := l.Acquire(ctx, LockInfo{Holder: "ana@laptop", Since: time.Now().Add(-3 * time.Minute), Action: "deploy to staging"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Acquire(ctx, LockInfo{Holder: "ci", Since: time.Now(), Action: "deploy to staging"})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "held by ana@laptop") || !strings.Contains(err.Error(), "3m0s ago") {
		t.Fatalf("second acquire: %v, want ErrLocked naming ana@laptop and the age", err)
	}
	if _, err := l.Break(ctx, 10*time.Minute, false); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("breaking a young lock without force: %v, want a refusal naming -force", err)
	}
	if held, _, _ := l.Read(ctx); held == nil {
		t.Fatal("the refused break removed the lock")
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	if held, _, _ := l.Read(ctx); held != nil {
		t.Fatalf("after release the lock is held by %v", held)
	}
	if _, err := l.Acquire(ctx, LockInfo{Holder: "ci"}); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if held, err := l.Break(ctx, time.Hour, true); err != nil || held.Holder != "ci" {
		t.Fatalf("force break: %v %v", held, err)
	}
	// The other environment's lock is another object.
	if _, err := (Lock{API: api, Stack: "svc-staging"}).Acquire(ctx, LockInfo{Holder: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ctx, LockInfo{Holder: "y"}); err != nil {
		t.Fatalf("stacks share a lock: %v", err)
	}
}

func TestHistory(t *testing.T) {
	api := newFakeSwarm()
	h := History{API: api, Stack: "svc", Keep: 3}
	ctx := t.Context()
	for i := range 5 {
		seq, err := h.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seq != i+1 {
			t.Fatalf("Next = %d, want %d", seq, i+1)
		}
		if err := h.Write(ctx, Record{Seq: seq, Result: Succeeded, Version: fmt.Sprintf("v%d", seq), Services: map[string]ServiceRecord{
			"app": {Image: "r/app:v1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "svc_app"}}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	// Another stack's records are not this one's.
	if err := (History{API: api, Stack: "other"}).Write(ctx, Record{Seq: 9}); err != nil {
		t.Fatal(err)
	}
	rs, err := h.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int
	for _, r := range rs {
		seqs = append(seqs, r.Seq)
	}
	if fmt.Sprint(seqs) != "[5 4 3]" {
		t.Errorf("kept records %v, want [5 4 3]: newest first, the oldest pruned", seqs)
	}
	if rs[0].Services["app"].Spec.Name != "svc_app" {
		t.Errorf("the spec did not survive the round trip: %+v", rs[0].Services)
	}
	if next, _ := h.Next(ctx); next != 6 {
		t.Errorf("Next after pruning = %d, want 6", next)
	}
	var b strings.Builder
	if err := PrintHistory(&b, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "v5") || strings.Index(b.String(), "v5") > strings.Index(b.String(), "v3") {
		t.Errorf("history table is not newest first:\n%s", b.String())
	}
}

// Constraints match as swarmkit's scheduler matches them
// (manager/constraint/constraint.go): a stricter check would refuse a
// deploy Swarm would place.
func TestMatchConstraints(t *testing.T) {
	n := swarm.Node{ID: "n1", Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager, Annotations: swarm.Annotations{Labels: map[string]string{"zone": "a"}}},
		Description: swarm.NodeDescription{Hostname: "Host1", Platform: swarm.Platform{OS: "linux", Architecture: "x86_64"},
			Engine: swarm.EngineDescription{Labels: map[string]string{"storage": "ssd"}}},
		Status: swarm.NodeStatus{Addr: "10.0.0.5"}}
	tests := []struct {
		name    string
		c       []string
		want    bool
		unknown []string
		err     string
	}{
		{name: "none", want: true},
		{name: "role", c: []string{"node.role == manager"}, want: true},
		{name: "another role", c: []string{"node.role==worker"}},
		{name: "two", c: []string{"node.role != worker", "node.hostname == host1"}, want: true},
		{name: "a value in another case", c: []string{"node.role == MANAGER"}, want: true},
		{name: "a key in another case", c: []string{"Node.Role == manager", "NODE.PLATFORM.OS == linux"}, want: true},
		{name: "label", c: []string{"node.labels.zone == a"}, want: true},
		{name: "label value in another case", c: []string{"node.labels.zone == A"}, want: true},
		{name: "label prefix in another case", c: []string{"Node.Labels.zone == a"}, want: true},
		{name: "a label's name keeps its case", c: []string{"node.labels.Zone == a"}},
		{name: "missing label !=", c: []string{"node.labels.missing != x"}, want: true},
		{name: "missing label ==", c: []string{"node.labels.missing == x"}},
		{name: "engine label", c: []string{"engine.labels.storage == SSD"}, want: true},
		{name: "ip", c: []string{"node.ip == 10.0.0.5"}, want: true},
		{name: "ip !=", c: []string{"node.ip != 10.0.0.5"}},
		{name: "ip in a subnet", c: []string{"node.ip == 10.0.0.0/24", "node.ip != 10.1.0.0/16"}, want: true},
		{name: "ip not in a subnet", c: []string{"node.ip == 10.1.0.0/16"}},
		{name: "ip, malformed", c: []string{"node.ip == ten"}, err: `"ten" is neither an IP address nor a CIDR subnet`},
		{name: "an unknown key is not evaluated", c: []string{"node.colour == red", "node.role == manager"}, want: true, unknown: []string{"node.colour == red"}},
		{name: "no operator", c: []string{"node.role"}, err: "want key==value or key!=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unknown, err := MatchConstraints(tt.c, n)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want || !slices.Equal(unknown, tt.unknown) {
				t.Errorf("MatchConstraints(%q) = %v, %q, %v; want %v, %q", tt.c, got, unknown, err, tt.want, tt.unknown)
			}
		})
	}
}

// The nodes check refuses what no node runs, and only warns of a key it
// does not know.
func TestCheckNodes(t *testing.T) {
	api := &fakeEngine{&fakeServices{fakeSwarm: newFakeSwarm()}}
	tests := []struct {
		name        string
		constraints []string
		ok, err     string // substrings of the line
	}{
		{name: "matches", constraints: []string{"node.role == Manager"}, ok: "1 ready"},
		{name: "an unknown key", constraints: []string{"node.colour == red"},
			ok: `1 ready; warning: service app: ["node.colour == red"] not checked`},
		{name: "no node", constraints: []string{"node.role == worker"}, err: "service app: no ready node matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs Checks
			checkNodes(t.Context(), api, map[string]swarm.ServiceSpec{"app": {TaskTemplate: swarm.TaskSpec{Placement: &swarm.Placement{Constraints: tt.constraints}}}}, &cs)
			if len(cs) != 1 {
				t.Fatalf("checks %+v", cs)
			}
			switch c := cs[0]; {
			case tt.err != "" && (c.Err == nil || !strings.Contains(c.Err.Error(), tt.err)):
				t.Errorf("nodes: %v, want %q", c.Err, tt.err)
			case tt.err == "" && (c.Err != nil || !strings.Contains(c.OK, tt.ok)):
				t.Errorf("nodes: %q, %v; want %q", c.OK, c.Err, tt.ok)
			}
		})
	}
}

func TestEnvDiffNeverShowsValues(t *testing.T) {
	got := envDiff([]string{"A=1", "B=secret-old", "C=3"}, []string{"A=1", "B=secret-new", "D=4"})
	if got != "~B +D -C" {
		t.Errorf("envDiff = %q", got)
	}
	if strings.Contains(got, "secret") {
		t.Error("a value leaked into the plan")
	}
	if snake("UpdateConfig.FailureAction") != "update_config.failure_action" {
		t.Error(snake("UpdateConfig.FailureAction"))
	}
}

// A change waits up to LockWait for a held lock, then is refused.
func TestAcquireWaits(t *testing.T) {
	defer func(p time.Duration) { lockPoll = p }(lockPoll)
	lockPoll = 5 * time.Millisecond
	api := newFakeSwarm()
	l := Lock{API: api, Stack: "svc"}
	release, err := l.Acquire(t.Context(), LockInfo{Holder: "ana@laptop", Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	d := &Deployer{Out: &out}
	if _, err := d.acquire(t.Context(), l, LockInfo{Holder: "ci"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("no wait: %v, want ErrLocked at once", err)
	}
	d.LockWait = 30 * time.Millisecond
	start := time.Now()
	if _, err := d.acquire(t.Context(), l, LockInfo{Holder: "ci"}); !errors.Is(err, ErrLocked) || time.Since(start) < d.LockWait {
		t.Fatalf("held throughout: %v after %s, want ErrLocked after %s", err, time.Since(start), d.LockWait)
	}
	if !strings.Contains(out.String(), "Waiting up to 30ms for the lock") || !strings.Contains(out.String(), "ana@laptop") {
		t.Errorf("the wait is not announced with its holder:\n%s", out.String())
	}
	d.LockWait = time.Minute
	time.AfterFunc(20*time.Millisecond, func() { _ = release(context.Background()) })
	if _, err := d.acquire(t.Context(), l, LockInfo{Holder: "ci"}); err != nil {
		t.Fatalf("released while waiting: %v", err)
	}
	if held, _, _ := l.Read(t.Context()); held == nil || held.Holder != "ci" {
		t.Errorf("the lock is held by %v, want ci", held)
	}
}

// failingConfigs is a Swarm whose Raft store refuses writes.
type failingConfigs struct{ *fakeSwarm }

func (failingConfigs) ConfigCreate(context.Context, client.ConfigCreateOptions) (client.ConfigCreateResult, error) {
	return client.ConfigCreateResult{}, errors.New("raft: no elected cluster leader")
}

// A record that cannot be written never changes the change's exit code,
// read as mage reads it: a plain type assertion, no unwrapping.
func TestRecordKeepsTheExitCode(t *testing.T) {
	d := &Deployer{Out: io.Discard}
	h := History{API: failingConfigs{newFakeSwarm()}, Stack: "svc"}
	tests := []struct {
		name   string
		result error
		want   int
	}{
		{"restored", &ExitError{Code: ExitRestored, Err: errors.New("rolled back")}, ExitRestored},
		{"not restored", &ExitError{Code: ExitBroken, Err: errors.New("stuck")}, ExitBroken},
		{"refused", Refused(errors.New("migrations failed")), ExitRefused},
		{"converged but unrecorded", nil, ExitBroken},
	}
	for _, tt := range tests {
		err := d.record(h, Record{Seq: 1}, tt.result)
		c, ok := err.(interface{ ExitStatus() int })
		if !ok || c.ExitStatus() != tt.want {
			t.Errorf("%s: %v (%T), want exit %d", tt.name, err, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), "no elected cluster leader") {
			t.Errorf("%s: the write's failure is not reported: %v", tt.name, err)
		}
	}
}
