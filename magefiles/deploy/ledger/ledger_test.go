package ledger

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
)

func TestLock(t *testing.T) {
	api := fakeswarm.New()
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
	if _, err := l.Break(ctx, time.Now(), 10*time.Minute, false); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("breaking a young lock without force: %v, want a refusal naming -force", err)
	}
	if held, _ := l.Read(ctx); held == nil {
		t.Fatal("the refused break removed the lock")
	}
	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	if held, _ := l.Read(ctx); held != nil {
		t.Fatalf("after release the lock is held by %v", held)
	}
	if _, err := l.Acquire(ctx, LockInfo{Holder: "ci"}); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if held, err := l.Break(ctx, time.Now(), time.Hour, true); err != nil || held.Holder != "ci" {
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

// A lock's age is the manager's: a holder whose clock runs an hour behind
// (or a breaker whose clock runs ahead) cannot make a working change's lock
// look abandoned.
func TestLockAgeByTheManagersClock(t *testing.T) {
	managerNow := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	api := fakeswarm.New()
	api.Now = func() time.Time { return managerNow }
	l := Lock{API: api, Stack: "svc"}
	skewed := managerNow.Add(-2 * time.Hour) // the holder's clock is two hours behind
	if _, err := l.Acquire(t.Context(), LockInfo{Holder: "ana@laptop", Since: skewed, Action: "deploy to staging"}); err != nil {
		t.Fatal(err)
	}
	managerNow = managerNow.Add(5 * time.Minute)
	if _, err := l.Break(t.Context(), managerNow, 30*time.Minute, false); err == nil || !strings.Contains(err.Error(), "5m0s old by the manager's clock") {
		t.Fatalf("a 5-minute lock held by a skewed clock: %v, want a refusal saying 5m0s", err)
	}
	managerNow = managerNow.Add(30 * time.Minute)
	if held, err := l.Break(t.Context(), managerNow, 30*time.Minute, false); err != nil || held == nil {
		t.Fatalf("a lock older than the longest hold: %v %v, want it broken", held, err)
	}
}

func TestHistory(t *testing.T) {
	api := fakeswarm.New()
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
	if err := Print(&b, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "v5") || strings.Index(b.String(), "v5") > strings.Index(b.String(), "v3") {
		t.Errorf("history table is not newest first:\n%s", b.String())
	}
}

// A long reason (a task's whole error, a smoke check's answers) is cut to
// MaxReason when written, on a character boundary.
func TestReasonsAreBounded(t *testing.T) {
	api := fakeswarm.New()
	h := History{API: api, Stack: "svc"}
	long := strings.Repeat("é", MaxReason)
	if err := h.Write(t.Context(), Record{Seq: 1, Reason: long}); err != nil {
		t.Fatal(err)
	}
	rs, err := h.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := rs[0].Reason
	if len(got) > MaxReason || !utf8.ValidString(got) || !strings.HasSuffix(got, "[... cut]") {
		t.Errorf("reason of %d bytes (valid UTF-8: %v), want at most %d ending in the cut mark", len(got), utf8.ValidString(got), MaxReason)
	}
	if BoundReason("short") != "short" {
		t.Error("a short reason was changed")
	}
}
