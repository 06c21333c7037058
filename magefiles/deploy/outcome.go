package deploy

import (
	"errors"
	"fmt"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/deploy/notify"
)

// outcome is how a change that got past preflight ends: the result it is
// recorded with, the exit code and the event it sends.
type outcome struct {
	Result ledger.Result
	Code   int
	Event  notify.Kind
	Err    error // the change's error, carrying Code; nil for a success
}

// decide is the outcome of a change from what happened to it: whether the
// apply failed, whether it had changed any service by then, whether it
// panicked, and whether the restore (run when something had changed) went
// through. A panicking change is broken whatever its restore did: what it
// changed may not all be known.
func decide(applyErr error, changed, panicked bool, restoreErr error) outcome {
	switch {
	case applyErr == nil:
		return outcome{Result: ledger.Succeeded, Code: ExitDeployed, Event: notify.Success}
	case !changed && !panicked:
		return outcome{Result: ledger.NotApplied, Code: ExitRefused, Event: notify.Failure}
	case restoreErr == nil && !panicked:
		return outcome{Result: ledger.RolledBack, Code: ExitRestored, Event: notify.Rollback}
	default:
		return outcome{Result: ledger.Failed, Code: ExitBroken, Event: notify.Failure}
	}
}

// withError fills in the error the change ends with.
func (o outcome) withError(action ledger.Action, applyErr, restoreErr error) outcome {
	var err error
	switch o.Result {
	case ledger.Succeeded:
		return o
	case ledger.NotApplied:
		err = fmt.Errorf("%s stopped before any service changed: %w", action, applyErr)
	case ledger.RolledBack:
		err = fmt.Errorf("%s failed and was rolled back: %w", action, applyErr)
	default:
		if restoreErr == nil {
			restoreErr = errors.New("it converged, but a change that panicked is not trusted to be whole: check deploy:status")
		}
		err = fmt.Errorf("%s failed (%w) and the restore did not converge: %w", action, applyErr, restoreErr)
	}
	o.Err = &ExitError{Code: o.Code, Err: err}
	return o
}
