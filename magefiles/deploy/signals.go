package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Interruptible returns a context cancelled by the first SIGINT or SIGTERM,
// which stops a change and starts its restore, and a second one cancelled
// by a later SIGINT, which abandons the restore. A SIGTERM never abandons
// one: a cancelled CI job sends SIGINT and, seconds later, SIGTERM, which
// is the same request again, not a person insisting. It takes SIGINT from
// mage, which would otherwise end the process 5 seconds after a Ctrl-C,
// long before a restore converges.
func Interruptible(parent context.Context, out io.Writer) (soft, hard context.Context, stop func()) {
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(parent))
	softCtx, softCancel := context.WithCancel(parent)
	signal.Ignore(os.Interrupt) // unhooks mage's own handler
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		stopping := false
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				switch {
				case !stopping:
					stopping = true
					fmt.Fprintf(out, "\n%s: stopping; the services this change touched are restored (Ctrl-C again to abandon the restore)\n", sig)
					softCancel()
				case sig == os.Interrupt:
					fmt.Fprintf(out, "\n%s: abandoning the restore; the stack may be half-restored\n", sig)
					hardCancel()
				default:
					fmt.Fprintf(out, "\n%s: already stopping; the restore goes on (Ctrl-C abandons it)\n", sig)
				}
			}
		}
	}()
	return softCtx, hardCtx, func() {
		close(done)
		signal.Stop(ch)
		softCancel()
		hardCancel()
	}
}
