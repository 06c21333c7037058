package swarmtest

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// procState reads the state letter that tells a process the sweep can
// kill from a zombie (already dead) or one gone.
func TestProcState(t *testing.T) {
	if st := procState(os.Getpid()); st != 'R' && st != 'S' {
		t.Errorf("this process: state %q, want R or S", st)
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a child: %v", err)
	}
	pid := cmd.Process.Pid
	for range 200 { // until it has exited and is not yet reaped
		if procState(pid) == 'Z' {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := procState(pid); st != 'Z' || !zombie(pid) {
		t.Errorf("an exited child not reaped: state %q, zombie %v; want Z, true", st, zombie(pid))
	}
	_ = cmd.Wait()
	if st := procState(pid); st != 0 || !zombie(pid) {
		t.Errorf("a reaped child: state %q, zombie %v; want gone", st, zombie(pid))
	}
}
