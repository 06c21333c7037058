package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// deploy:unlock without -force breaks only a lock older, by the manager's
// clock, than the longest a working change holds it.
func TestUnlock(t *testing.T) {
	s, api, out := testSession(t, 0)
	managerNow := time.Now()
	api.Now = func() time.Time { return managerNow }
	if _, err := (ledger.Lock{API: api, Stack: "svc"}).Acquire(t.Context(), ledger.LockInfo{Holder: "ci", Since: managerNow}); err != nil {
		t.Fatal(err)
	}
	managerNow = managerNow.Add(3 * s.Env.Deadline) // past the old rule of twice the deadline
	if err := s.Unlock(t.Context(), false, false); exitCode(err) != ExitRefused || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("a lock 3 deadlines old: %v, want a refusal (a change may hold it 4 deadlines and more)", err)
	}
	managerNow = managerNow.Add(s.Env.MaxHold())
	if err := s.Unlock(t.Context(), false, false); err != nil || !strings.Contains(out.String(), "broke the lock held by ci") {
		t.Fatalf("a lock older than MaxHold: %v\n%s", err, out.String())
	}
}
