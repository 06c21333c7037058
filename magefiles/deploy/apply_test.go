package deploy

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// A node drained during the rollout makes Swarm roll the update back (the
// task it stopped counts as a failure): not the release's fault, so the
// change lets the rollback finish and sends the update again, once.
func TestRolledBackForANodeIsTriedAgain(t *testing.T) {
	s, api, out := testSession(t, 0)
	api.Nodes = []swarm.Node{
		{ID: "m1", Description: swarm.NodeDescription{Hostname: "m1"}, Status: swarm.NodeStatus{State: swarm.NodeStateReady},
			Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive}},
		{ID: "w1", Description: swarm.NodeDescription{Hostname: "w1"}, Status: swarm.NodeStatus{State: swarm.NodeStateReady},
			Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityDrain}},
	}
	updates := 0
	api.OnChange = func(svc *swarm.Service, tasks []*swarm.Task) {
		if svc.Spec.Name != "svc_app" || svc.PreviousSpec == nil {
			return
		}
		updates++
		if updates == 1 && len(tasks) > 0 {
			// The first try: a task stopped on the drained node.
			stopped := tasks[0]
			stopped.NodeID = "w1"
			svc.UpdateStatus.State = swarm.UpdateStateRollbackCompleted
			svc.UpdateStatus.Message = "update rolled back due to failure or early termination of task " + stopped.ID
		}
	}
	// One replica, so the update has a task to blame.
	app, _ := api.Service("svc_app")
	one := uint64(1)
	app.Spec.Mode.Replicated.Replicas = &one
	if _, err := api.ServiceUpdate(t.Context(), app.ID, clientUpdate(app.Spec)); err != nil {
		t.Fatal(err)
	}
	updates = 0
	if err := s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v3"}); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if updates != 2 || !strings.Contains(out.String(), "was stopped because node w1 was set to drain during the update") {
		t.Errorf("%d updates, want 2; output:\n%s", updates, out.String())
	}
	if !strings.Contains(out.String(), "updated service svc_app again") {
		t.Errorf("the update was not sent again:\n%s", out.String())
	}
	rs, _ := ledger.History{API: api, Stack: "svc"}.List(t.Context())
	if len(rs) != 1 || rs[0].Result != ledger.Succeeded {
		t.Errorf("records %+v, want one success", rs)
	}
}
