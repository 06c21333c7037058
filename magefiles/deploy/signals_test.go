package deploy

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// A cancelled CI job sends SIGINT, then SIGTERM: the first starts the
// restore, the second must not abandon it. Only a second SIGINT does.
func TestSignalsOfACancelledJob(t *testing.T) {
	var out syncBuffer
	soft, hard, stop := Interruptible(t.Context(), &out)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !waitDone(soft) {
		t.Fatal("SIGINT did not stop the change")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if hard.Err() != nil {
		t.Fatal("SIGTERM after SIGINT abandoned the restore")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !waitDone(hard) {
		t.Fatal("a second SIGINT did not abandon the restore")
	}
	for _, w := range []string{"interrupt: stopping", "terminated: already stopping; the restore goes on", "interrupt: abandoning the restore"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output does not say %q:\n%s", w, out.String())
		}
	}
}
