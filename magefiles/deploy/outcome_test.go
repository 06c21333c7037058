package deploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/deploy/notify"
)

// Every way a change that got past preflight can end, with the result it
// is recorded with, its exit code and the event it sends.
func TestDecide(t *testing.T) {
	failed, stuck := errors.New("Swarm rolled the update back"), errors.New("app: progress deadline exceeded")
	tests := []struct {
		name       string
		applyErr   error
		changed    bool
		panicked   bool
		restoreErr error
		result     ledger.Result
		code       int
		event      notify.Kind
		says       string
	}{
		{"converged", nil, true, false, nil, ledger.Succeeded, ExitDeployed, notify.Success, ""},
		{"a migration failed before any service changed", failed, false, false, nil, ledger.NotApplied, ExitRefused, notify.Failure, "stopped before any service changed"},
		{"failed and restored", failed, true, false, nil, ledger.RolledBack, ExitRestored, notify.Rollback, "failed and was rolled back: Swarm rolled"},
		{"failed and the restore did not converge", failed, true, false, stuck, ledger.Failed, ExitBroken, notify.Failure, "the restore did not converge: app: progress deadline"},
		{"a panic after a change, restored", errPanic, true, true, nil, ledger.Failed, ExitBroken, notify.Failure, "not trusted to be whole"},
		{"a panic before any change", errPanic, false, true, nil, ledger.Failed, ExitBroken, notify.Failure, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := decide(tt.applyErr, tt.changed, tt.panicked, tt.restoreErr).withError(ledger.Deploy, tt.applyErr, tt.restoreErr)
			if o.Result != tt.result || o.Code != tt.code || o.Event != tt.event {
				t.Errorf("= %s, exit %d, %s; want %s, exit %d, %s", o.Result, o.Code, o.Event, tt.result, tt.code, tt.event)
			}
			if tt.says == "" {
				if o.Err != nil {
					t.Errorf("a success ends with %v", o.Err)
				}
				return
			}
			c, ok := o.Err.(interface{ ExitStatus() int })
			if !ok || c.ExitStatus() != tt.code || !strings.Contains(o.Err.Error(), tt.says) {
				t.Errorf("error %v (%T), want exit %d saying %q", o.Err, o.Err, tt.code, tt.says)
			}
		})
	}
}
