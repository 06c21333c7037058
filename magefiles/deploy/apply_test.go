package deploy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
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

// An update Swarm neither finished nor rolled back (its updater waits on a
// task of a node that went down) is rolled back by the deploy, then sent
// again: a new update is the only thing that ends Swarm's wait.
func TestStalledForANodeIsRolledBackAndTriedAgain(t *testing.T) {
	s, api, out := testSession(t, 1)
	app, _ := api.Service("svc_app")
	v1 := app.Spec
	v3 := v1
	v3.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "registry.example/app:v3@" + digestV3}
	if _, err := api.ServiceUpdate(t.Context(), app.ID, clientUpdate(v3)); err != nil {
		t.Fatal(err)
	}
	api.Calls = nil
	changes := []ServiceChange{{Name: "app", Action: Update, Old: &v1, New: &v3, Rolling: true}}
	applied := newApplied("c1")
	applied.Watches = []converge.Watch{{Name: "app", ID: app.ID, Rolling: true}}
	nf := &converge.NodeFaultError{Watch: applied.Watches[0], Why: "Swarm's update waits on task t1 on node w2 (down)",
		Err: errors.New("app: stalled"), Stalled: true}

	err := s.updateAgain(t.Context(), nf, changes, applied, converge.Options{Deadline: time.Minute, Poll: time.Millisecond, Out: out})
	if err != nil {
		t.Fatalf("update again: %v\n%s", err, out.String())
	}
	want := []string{"rollback svc_app", "update svc_app image=registry.example/app:v3@" + digestV3}
	if !slices.Equal(api.Calls, want) {
		t.Errorf("calls %q, want %q", api.Calls, want)
	}
	if !strings.Contains(out.String(), "stalled for a node's sake") {
		t.Errorf("the output does not say why it rolled back:\n%s", out.String())
	}
	if got, _ := api.Service("svc_app"); got.Spec.TaskTemplate.ContainerSpec.Image != v3.TaskTemplate.ContainerSpec.Image {
		t.Errorf("the service runs %s, want v3", got.Spec.TaskTemplate.ContainerSpec.Image)
	}
}

// An update Swarm completed with a slot run twice (a drained node's task
// replaced as the updater also filled its slot) gets its own spec once
// more, with no rollback: that makes Swarm's updater stop the extra task.
func TestSurplusIsSentAgain(t *testing.T) {
	s, api, out := testSession(t, 1)
	app, _ := api.Service("svc_app")
	api.Calls = nil
	applied := newApplied("c1")
	applied.Watches = []converge.Watch{{Name: "app", ID: app.ID, Rolling: true}}
	nf := &converge.NodeFaultError{Watch: applied.Watches[0], Why: "Swarm runs a slot twice", Err: errors.New("app: surplus"), Surplus: true}
	changes := []ServiceChange{{Name: "app", Action: Update, Old: &app.Spec, New: &app.Spec, Rolling: true}}

	if err := s.updateAgain(t.Context(), nf, changes, applied, converge.Options{Deadline: time.Minute, Poll: time.Millisecond, Out: out}); err != nil {
		t.Fatalf("update again: %v\n%s", err, out.String())
	}
	if want := []string{"update svc_app image=" + app.Spec.TaskTemplate.ContainerSpec.Image}; !slices.Equal(api.Calls, want) {
		t.Errorf("calls %q, want %q", api.Calls, want)
	}
	if !strings.Contains(out.String(), "runs a slot twice: sending the same spec again") {
		t.Errorf("the output does not say why it sent the spec again:\n%s", out.String())
	}
}

// Swarm moves a service's version when it writes its update status (an
// earlier update finishing after the deploy read the service): the update
// is sent again at the new version. When the spec moved too, someone else
// changed the service, and Swarm's refusal stands.
func TestUpdateServiceOutOfSequence(t *testing.T) {
	tests := []struct {
		name    string
		between func(api *fakeswarm.Engine, read swarm.Service)
		wantErr string
	}{
		{"only the version moved", func(api *fakeswarm.Engine, _ swarm.Service) { api.Touch("svc_app") }, ""},
		{"the spec moved too", func(api *fakeswarm.Engine, read swarm.Service) {
			other := read.Spec
			other.Labels = map[string]string{StackLabel: "svc", "changed": "by someone else"}
			if _, err := api.ServiceUpdate(t.Context(), read.ID, clientUpdate(other)); err != nil {
				t.Fatal(err)
			}
		}, "update out of sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, api, _ := testSession(t, 1)
			read, _ := api.Service("svc_app")
			tt.between(api, read)
			spec := read.Spec
			spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "registry.example/app:v3@" + digestV3}
			err := updateService(t.Context(), api, read, spec, noAuth)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("update: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("update: %v, want %q", err, tt.wantErr)
			}
			now, _ := api.Service("svc_app")
			if got := now.Spec.TaskTemplate.ContainerSpec.Image == spec.TaskTemplate.ContainerSpec.Image; got != (tt.wantErr == "") {
				t.Errorf("the service runs %s", now.Spec.TaskTemplate.ContainerSpec.Image)
			}
		})
	}
}
