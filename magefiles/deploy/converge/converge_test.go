package converge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// The Swarm states a deploy must not be fooled by (../shared/NOTES.md,
// "Swarm pitfalls"), one row each.
func TestEvaluate(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	earlier := t0.Add(-time.Hour)
	ours := t0.Add(time.Second)
	two := uint64(2)
	svc := func(state swarm.UpdateState, started *time.Time, msg string) swarm.Service {
		s := swarm.Service{Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &two}}}}
		if started != nil {
			s.UpdateStatus = &swarm.UpdateStatus{State: state, StartedAt: started, Message: msg}
		}
		return s
	}
	task := func(id string, desired, state swarm.TaskState, err string) swarm.Task {
		return swarm.Task{ID: id, DesiredState: desired, Status: swarm.TaskStatus{State: state, Err: err}}
	}
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	oldA, oldB := task("oldA", run, run, ""), task("oldB", run, run, "")
	newA, newB := task("newA", run, run, ""), task("newB", run, run, "")
	existing := map[string]bool{"oldA": true, "oldB": true}
	update := Watch{Name: "app", Rolling: true, Before: &earlier, Applied: t0, Existing: existing}

	// Several nodes: w2 is down; its tasks are still listed as Swarm last
	// heard of them.
	node := func(id string, state swarm.NodeState) swarm.Node {
		return swarm.Node{ID: id, Description: swarm.NodeDescription{Hostname: id},
			Status: swarm.NodeStatus{State: state}, Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive}}
	}
	nodes := map[string]swarm.Node{"m1": node("m1", swarm.NodeStateReady), "w1": node("w1", swarm.NodeStateReady), "w2": node("w2", swarm.NodeStateDown)}
	on := func(t swarm.Task, n string) swarm.Task { t.NodeID = n; return t }
	inSlot := func(t swarm.Task, slot int) swarm.Task { t.Slot = slot; return t }
	stoppedAt := func(t swarm.Task, at time.Time) swarm.Task { t.UpdatedAt = at; return t }
	three := uint64(3)
	svc3 := func(state swarm.UpdateState, started *time.Time) swarm.Service {
		s := svc(state, started, "")
		s.Spec.Mode.Replicated.Replicas = &three
		return s
	}
	// stalledTasks is what Swarm showed when its updater placed a task on
	// a node that went down before the task started: Swarm replaced it in
	// its slot (new1) but the updater waits for it, and slot 1's old task
	// (oldA) runs on.
	stalledCurrent := []swarm.Task{
		inSlot(on(task("stuck", shut, swarm.TaskStateAssigned, ""), "w2"), 1),
		inSlot(on(task("new1", run, run, ""), "w1"), 1), inSlot(on(task("new3", run, run, ""), "m1"), 3),
	}
	stalledTasks := append([]swarm.Task{
		inSlot(on(oldA, "w1"), 1), inSlot(on(task("old2", run, run, ""), "m1"), 2), inSlot(on(task("oldB", shut, run, ""), "w2"), 3),
	}, stalledCurrent...)
	// twice is what Swarm showed after a node was drained mid-update:
	// slot 1 run by its replacement and by the updater's task.
	twice := []swarm.Task{inSlot(on(newA, "m1"), 1), inSlot(on(task("newA2", run, run, ""), "w1"), 1),
		inSlot(on(newB, "w1"), 2), inSlot(on(task("newC", run, run, ""), "m1"), 3)}
	// rolledBack is Swarm's rollback of our update, blaming task id.
	rolledBack := func(id string) swarm.Service {
		s := svc3(swarm.UpdateStateRollbackStarted, &ours)
		s.UpdateStatus.Message = "update rolled back due to failure or early termination of task " + id
		return s
	}
	drainedW1 := map[string]swarm.Node{"m1": node("m1", swarm.NodeStateReady), "w1": node("w1", swarm.NodeStateReady)}
	drainedW1["w1"] = func(n swarm.Node) swarm.Node { n.Spec.Availability = swarm.NodeAvailabilityDrain; return n }(drainedW1["w1"])
	oldC, newC := task("oldC", run, run, ""), task("newC", run, run, "")
	deadOld := on(task("oldW2", shut, run, ""), "w2") // told to stop; its node cannot say it did
	global := swarm.Service{Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}}}}
	one := uint64(1)
	job := swarm.Service{Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{TotalCompletions: &one}},
		TaskTemplate: swarm.TaskSpec{RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}}}}

	tests := []struct {
		name    string
		w       Watch
		o       Observation
		done    bool
		failed  string // substring of the failure; "" for none
		fault   string // the node fault it is put down to; "" for none
		stalled bool   // Swarm's update stalled rather than rolled back
		surplus bool   // Swarm completed with a slot run twice
		lineHas string
	}{
		{
			name: "a rollback_completed from an earlier update is not this deploy's",
			w:    update,
			o: Observation{Now: t0.Add(time.Second), Service: svc(swarm.UpdateStateRollbackCompleted, &earlier, "rollback completed"),
				Tasks: []swarm.Task{oldA, oldB}},
		},
		{
			name: "start-first: running equals desired while the old tasks still run",
			w:    update,
			o: Observation{Now: t0.Add(5 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks: []swarm.Task{oldA, oldB, newA}, UpToDate: []swarm.Task{newA}},
			lineHas: "1/2 updated, 3/2 healthy (updating)",
		},
		{
			name: "every task current, but Swarm has not said completed (monitor period)",
			w:    update,
			o: Observation{Now: t0.Add(20 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks: []swarm.Task{task("oldA", shut, shut, ""), task("oldB", shut, shut, ""), newA, newB}, UpToDate: []swarm.Task{newA, newB}},
		},
		{
			name: "completed, and every task of the new spec running",
			w:    update,
			o: Observation{Now: t0.Add(40 * time.Second), Service: svc(swarm.UpdateStateCompleted, &ours, "update completed"),
				Tasks: []swarm.Task{task("oldA", shut, shut, ""), newA, newB}, UpToDate: []swarm.Task{newA, newB}},
			done: true,
		},
		{
			name: "completed, but an old task is still running",
			w:    update,
			o: Observation{Now: t0.Add(40 * time.Second), Service: svc(swarm.UpdateStateCompleted, &ours, "update completed"),
				Tasks: []swarm.Task{oldA, newA, newB}, UpToDate: []swarm.Task{newA, newB}},
		},
		{
			name: "Swarm rolled this update back: failed, with its reason",
			w:    update,
			o: Observation{Now: t0.Add(30 * time.Second), Service: svc(swarm.UpdateStateRollbackCompleted, &ours, "update rolled back due to failure or early termination of task x"),
				Tasks:    []swarm.Task{oldA, oldB, task("n1", shut, swarm.TaskStateFailed, "task: non-zero exit (1)")},
				UpToDate: []swarm.Task{oldA, oldB}},
			failed: "Swarm rolled the update back: update rolled back due to failure or early termination of task x (a new task: failed: task: non-zero exit (1))",
		},
		{
			name:   "a rollback in progress is already a failure",
			w:      update,
			o:      Observation{Now: t0.Add(9 * time.Second), Service: svc(swarm.UpdateStateRollbackStarted, &ours, "update rolled back"), Tasks: []swarm.Task{oldA, oldB}},
			failed: "rolled the update back",
		},
		{
			name:   "paused",
			w:      update,
			o:      Observation{Now: t0.Add(9 * time.Second), Service: svc(swarm.UpdateStatePaused, &ours, "update paused due to failure"), Tasks: []swarm.Task{oldA, oldB}},
			failed: "paused the update: update paused due to failure",
		},
		{
			name: "new tasks failing repeatedly",
			w:    update,
			o: Observation{Now: t0.Add(9 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks: []swarm.Task{oldA, oldB,
					task("n1", shut, swarm.TaskStateFailed, "task: non-zero exit (2)"),
					task("n2", shut, swarm.TaskStateFailed, "task: non-zero exit (2)"),
					task("n3", run, swarm.TaskStateFailed, "task: non-zero exit (2)")},
				UpToDate: []swarm.Task{task("n1", "", "", ""), task("n2", "", "", ""), task("n3", "", "", "")}},
			failed: "3 new tasks failed, the last: failed: task: non-zero exit (2)",
		},
		{
			name: "failures of tasks from before the change do not count",
			w:    Watch{Name: "app", Rolling: true, Before: &earlier, Applied: t0, Existing: map[string]bool{"f1": true, "f2": true, "f3": true}},
			o: Observation{Now: t0.Add(9 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks:    []swarm.Task{task("f1", shut, swarm.TaskStateFailed, "x"), task("f2", shut, swarm.TaskStateFailed, "x"), task("f3", shut, swarm.TaskStateFailed, "x")},
				UpToDate: []swarm.Task{task("f1", "", "", ""), task("f2", "", "", ""), task("f3", "", "", "")}},
		},
		{
			name: "no node can place the task: not yet",
			w:    update,
			o: Observation{Now: t0.Add(5 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks:    []swarm.Task{oldA, oldB, task("p", run, swarm.TaskStatePending, "no suitable node (insufficient resources on 1 node)")},
				UpToDate: []swarm.Task{task("p", "", "", "")}},
		},
		{
			name: "no node can place the task: for long enough",
			w:    update,
			o: Observation{Now: t0.Add(11 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks:    []swarm.Task{oldA, oldB, task("p", run, swarm.TaskStatePending, "no suitable node (insufficient resources on 1 node)")},
				UpToDate: []swarm.Task{task("p", "", "", "")}},
			failed: "no node can run the new task: no suitable node (insufficient resources",
		},
		{
			name: "the image cannot be pulled: at once",
			w:    update,
			o: Observation{Now: t0.Add(2 * time.Second), Service: svc(swarm.UpdateStateUpdating, &ours, ""),
				Tasks:    []swarm.Task{oldA, oldB, task("r", shut, swarm.TaskStateRejected, "No such image: registry/app:v2")},
				UpToDate: []swarm.Task{task("r", "", "", "")}},
			failed: "No such image",
		},
		{
			name: "UpdateStatus is nil right after a create: counts decide",
			w:    Watch{Name: "app", Rolling: true, Applied: t0},
			o:    Observation{Now: t0.Add(15 * time.Second), Service: svc("", nil, ""), Tasks: []swarm.Task{newA, newB}, UpToDate: []swarm.Task{newA, newB}},
			done: true,
		},
		{
			name: "a rolling change Swarm did not start: wait out the grace",
			w:    update,
			o:    Observation{Now: t0.Add(2 * time.Second), Service: svc(swarm.UpdateStateCompleted, &earlier, ""), Tasks: []swarm.Task{oldA, oldB}, UpToDate: []swarm.Task{oldA, oldB}},
		},
		{
			name: "a rolling change Swarm found nothing to replace for: done after the grace",
			w:    update,
			o:    Observation{Now: t0.Add(6 * time.Second), Service: svc(swarm.UpdateStateCompleted, &earlier, ""), Tasks: []swarm.Task{oldA, oldB}, UpToDate: []swarm.Task{oldA, oldB}},
			done: true,
		},
		{
			name: "scale: no rolling update, done when the count is reached",
			w:    Watch{Name: "app", Applied: t0, Before: &earlier},
			o:    Observation{Now: t0.Add(time.Second), Service: svc(swarm.UpdateStateCompleted, &earlier, ""), Tasks: []swarm.Task{oldA, oldB}, UpToDate: []swarm.Task{oldA, oldB}},
			done: true,
		},
		{
			name: "scale down: a task above the count still running",
			w:    Watch{Name: "app", Applied: t0},
			o: Observation{Now: t0.Add(time.Second), Service: svc("", nil, ""),
				Tasks: []swarm.Task{oldA, oldB, task("c", run, run, "")}, UpToDate: []swarm.Task{oldA, oldB, task("c", run, run, "")}},
		},
		{
			name: "scale down: the task told to stop is still draining",
			w:    Watch{Name: "app", Applied: t0},
			o: Observation{Now: t0.Add(time.Second), Service: svc("", nil, ""),
				Tasks: []swarm.Task{oldA, oldB, task("c", shut, run, "")}, UpToDate: []swarm.Task{oldA, oldB, task("c", shut, run, "")}},
		},
		{
			name: "restore: Swarm's own rollback in progress is progress",
			w:    Watch{Name: "app", Restore: true, Applied: t0},
			o:    Observation{Now: t0.Add(time.Second), Service: svc(swarm.UpdateStateRollbackStarted, &ours, ""), Tasks: []swarm.Task{oldA, newA}, UpToDate: []swarm.Task{oldA}},
		},
		{
			name: "restore: rollback completed with the kept spec's tasks running",
			w:    Watch{Name: "app", Restore: true, Applied: t0},
			o:    Observation{Now: t0.Add(time.Second), Service: svc(swarm.UpdateStateRollbackCompleted, &ours, ""), Tasks: []swarm.Task{oldA, oldB}, UpToDate: []swarm.Task{oldA, oldB}},
			done: true,
		},
		{
			name:   "restore: paused",
			w:      Watch{Name: "app", Restore: true, Applied: t0, Before: &earlier},
			o:      Observation{Now: t0.Add(time.Second), Service: svc(swarm.UpdateStateRollbackPaused, &ours, "rollback paused"), Tasks: []swarm.Task{oldA}},
			failed: "paused the restore",
		},
		{
			name: "removed: done when gone",
			w:    Watch{Name: "worker", Gone: true},
			o:    Observation{Gone: true},
			done: true,
		},
		{
			name: "a task on a down node is neither healthy nor stopping: the restore is done",
			w:    Watch{Name: "app", Restore: true},
			o: Observation{Now: t0, Service: svc3(swarm.UpdateStateRollbackCompleted, &ours), Nodes: nodes,
				Tasks:    []swarm.Task{on(oldA, "m1"), on(oldB, "w1"), on(oldC, "m1"), deadOld},
				UpToDate: []swarm.Task{on(oldA, "m1"), on(oldB, "w1"), on(oldC, "m1")}},
			done:    true,
			lineHas: "3/3 updated, 3/3 healthy (rollback_completed); 1 on a node that is not ready, left for Swarm to replace: task oldW2 on node w2 (down)",
		},
		{
			name: "Swarm's update waits on a task of a down node, but the spec serves elsewhere: done",
			w:    update,
			o: Observation{Now: t0.Add(40 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks:    []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(newC, "m1"), deadOld},
				UpToDate: []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(newC, "m1")}},
			done:    true,
			lineHas: "3/3 updated, 3/3 healthy (updating); 1 on a node that is not ready",
		},
		{
			name: "a node went down mid-update, Swarm has not run the replica elsewhere yet: wait",
			w:    update,
			o: Observation{Now: t0.Add(40 * time.Second), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks:    []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(task("newW2", run, run, ""), "w2")},
				UpToDate: []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(task("newW2", run, run, ""), "w2")}},
			lineHas: "2/3 updated, 2/3 healthy (updating)",
		},
		{
			name: "...and it never does: fail, naming the node and the task",
			w:    update,
			o: Observation{Now: t0.Add(30*time.Second + LostStall), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks:    []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(task("newW2", run, run, ""), "w2")},
				UpToDate: []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(task("newW2", run, run, ""), "w2")}},
			failed: "only 2 of 3 tasks of the spec run on ready nodes 1m30s after a node went down (task newW2 on node w2 (down))",
			fault:  "Swarm's update waits on task newW2 on node w2 (down)", stalled: true,
		},
		{
			name: "...or every replica is updated, but Swarm's update never stops an old task: fail, saying that",
			w:    update,
			o: Observation{Now: t0.Add(30*time.Second + LostStall), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks:    []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(newC, "w1"), on(oldA, "m1"), on(task("oldW2", run, run, ""), "w2")},
				UpToDate: []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(newC, "w1")}},
			failed: "1 task(s) of the previous spec still run on ready nodes 1m30s after a node went down (task oldW2 on node w2 (down))",
			fault:  "Swarm's update waits on task oldW2 on node w2 (down)", stalled: true,
		},
		{
			name: "...a restore that stalls so fails, and is no node's fault to try again",
			w:    Watch{Name: "app", Restore: true},
			o: Observation{Now: t0.Add(30*time.Second + LostStall), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateRollbackStarted, &ours), Nodes: nodes,
				Tasks:    []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(task("newW2", run, run, ""), "w2")},
				UpToDate: []swarm.Task{on(newA, "m1"), on(newB, "w1"), on(task("newW2", run, run, ""), "w2")}},
			failed: "only 2 of 3 tasks of the spec run on ready nodes 1m30s after a node went down",
		},
		{
			name: "Swarm's update waits on a task it placed on a node that then went down: wait a little",
			w:    update,
			o: Observation{Now: t0.Add(40 * time.Second), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks: stalledTasks, UpToDate: stalledCurrent},
			lineHas: "2/3 updated, 4/3 healthy (updating); 1 on a node that is not ready, left for Swarm to replace: task oldB on node w2 (down); never to start: task stuck on node w2 (down)",
		},
		{
			name: "...then call it stalled, at once rather than after LostStall",
			w:    update,
			o: Observation{Now: t0.Add(30*time.Second + StallGrace), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks: stalledTasks, UpToDate: stalledCurrent},
			failed: "2 task(s) of the previous spec still run on ready nodes: Swarm's update waits on task stuck on node w2 (down), which it has replaced and will never start",
			fault:  "Swarm's update waits on task stuck on node w2 (down)", stalled: true,
		},
		{
			name: "...but not for such a task of an earlier change",
			w:    Watch{Name: "app", Rolling: true, Before: &earlier, Applied: t0, Existing: map[string]bool{"oldA": true, "oldB": true, "stuck": true}},
			o: Observation{Now: t0.Add(30*time.Second + StallGrace), LostSince: t0.Add(30 * time.Second), Service: svc3(swarm.UpdateStateUpdating, &ours), Nodes: nodes,
				Tasks: stalledTasks, UpToDate: stalledCurrent},
			lineHas: "2/3 updated, 4/3 healthy (updating)",
		},
		{
			name: "Swarm completed the update but runs a slot twice: not done, and not yet a failure",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), ChangedAt: t0, Service: svc3(swarm.UpdateStateCompleted, &ours), Nodes: nodes,
				Tasks: twice, UpToDate: twice},
			lineHas: "4/3 updated, 4/3 healthy (completed)",
		},
		{
			name: "...and once it has kept it so for StallGrace, a failure to send the spec again for",
			w:    update,
			o: Observation{Now: t0.Add(StallGrace), ChangedAt: t0, Service: svc3(swarm.UpdateStateCompleted, &ours), Nodes: nodes,
				Tasks: twice, UpToDate: twice},
			failed: "Swarm completed the update with 1 task(s) of the spec more than its 3 replicas, and kept them for 15s",
			fault:  "Swarm runs a slot twice", surplus: true,
		},
		{
			name: "Swarm rolled back because a drained node's task ended: the node's fault",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newW1"), Nodes: drainedW1,
				Tasks: []swarm.Task{on(oldA, "m1"), on(task("newW1", shut, shut, ""), "w1")}},
			failed: "Swarm rolled the update back",
			fault:  "task newW1 was stopped because node w1 was set to drain during the update",
		},
		{
			name: "Swarm rolled back a task whose slot's task was on a drained node: the node's fault",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newA"), Nodes: drainedW1,
				Tasks: []swarm.Task{inSlot(on(task("newA", shut, shut, ""), "m1"), 1), inSlot(on(task("oldW1", shut, shut, ""), "w1"), 1), inSlot(on(oldB, "m1"), 2)}},
			failed: "Swarm rolled the update back",
			fault:  "task newA ended with its slot's task oldW1, which was stopped because node w1 was set to drain during the update",
		},
		{
			name: "...but not when the slot's other task is on a ready, active node",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newA"), Nodes: nodes,
				Tasks: []swarm.Task{inSlot(on(task("newA", shut, swarm.TaskStateFailed, "exit 1"), "m1"), 1), inSlot(on(oldA, "w1"), 1), inSlot(on(task("oldW2", run, run, ""), "w2"), 2)}},
			failed: "Swarm rolled the update back",
		},
		{
			name: "Swarm rolled back a shut-down task in another slot while it stopped a drained node's task: the node's fault",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newA"), Nodes: drainedW1,
				Tasks: []swarm.Task{inSlot(on(task("newA", shut, shut, ""), "m1"), 1), inSlot(on(oldA, "m1"), 1),
					inSlot(on(stoppedAt(task("oldW1", shut, shut, ""), t0.Add(2*time.Second)), "w1"), 2), inSlot(on(newB, "m1"), 2)}},
			failed: "Swarm rolled the update back: update rolled back due to failure or early termination of task newA (task newA: slot 1 on node m1, shutdown)",
			fault:  "task newA was shut down while Swarm stopped task oldW1, which was stopped because node w1 was set to drain during the update",
		},
		{
			name: "...but not when that node was drained before the change was sent",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newA"), Nodes: drainedW1,
				Tasks: []swarm.Task{inSlot(on(task("newA", shut, shut, ""), "m1"), 1), inSlot(on(oldA, "m1"), 1),
					inSlot(on(stoppedAt(task("oldW1", shut, shut, ""), t0.Add(-time.Minute)), "w1"), 2), inSlot(on(newB, "m1"), 2)}},
			failed: "Swarm rolled the update back",
		},
		{
			name: "...nor when the blamed task failed on its own",
			w:    update,
			o: Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newA"), Nodes: drainedW1,
				Tasks: []swarm.Task{inSlot(on(task("newA", shut, swarm.TaskStateFailed, "exit 1"), "m1"), 1), inSlot(on(oldA, "m1"), 1),
					inSlot(on(stoppedAt(task("oldW1", shut, shut, ""), t0.Add(2*time.Second)), "w1"), 2), inSlot(on(newB, "m1"), 2)}},
			failed: "Swarm rolled the update back",
		},
		{
			name:   "a rollback for the release's own failing task is not a node's fault",
			w:      update,
			o:      Observation{Now: t0.Add(10 * time.Second), Service: rolledBack("newA"), Nodes: nodes, Tasks: []swarm.Task{on(task("newA", shut, swarm.TaskStateFailed, "exit 1"), "m1")}},
			failed: "Swarm rolled the update back",
		},
		{
			name: "a recreated global service is not done before every eligible node has its task",
			w:    Watch{Name: "agent", Restore: true},
			o: Observation{Now: t0, Service: global, Nodes: map[string]swarm.Node{"m1": node("m1", swarm.NodeStateReady), "w1": node("w1", swarm.NodeStateReady)},
				Tasks: []swarm.Task{on(newA, "m1")}, UpToDate: []swarm.Task{on(newA, "m1")}},
			lineHas: "1/2 updated",
		},
		{
			name: "...and is when it has",
			w:    Watch{Name: "agent", Restore: true},
			o: Observation{Now: t0, Service: global, Nodes: map[string]swarm.Node{"m1": node("m1", swarm.NodeStateReady), "w1": node("w1", swarm.NodeStateReady)},
				Tasks: []swarm.Task{on(newA, "m1"), on(newB, "w1")}, UpToDate: []swarm.Task{on(newA, "m1"), on(newB, "w1")}},
			done: true,
		},
		{
			name: "a job is done when it completed",
			w:    Watch{Name: "seed"},
			o:    Observation{Now: t0, Service: job, UpToDate: []swarm.Task{task("j1", swarm.TaskStateComplete, swarm.TaskStateComplete, "")}},
			done: true, lineHas: "seed: 1/1 completed (a job)",
		},
		{
			name: "a job still running is not done",
			w:    Watch{Name: "seed"},
			o:    Observation{Now: t0, Service: job, UpToDate: []swarm.Task{task("j1", swarm.TaskStateComplete, swarm.TaskStateRunning, "")}},
		},
		{
			name:   "a job that failed fails the change",
			w:      Watch{Name: "seed"},
			o:      Observation{Now: t0, Service: job, UpToDate: []swarm.Task{task("j1", swarm.TaskStateComplete, swarm.TaskStateFailed, "exit 1")}},
			failed: "the job failed: failed: exit 1",
		},
		{
			name:   "a service that disappears under an update",
			w:      update,
			o:      Observation{Gone: true},
			failed: "disappeared",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Evaluate(tt.w, tt.o)
			if p.Done != tt.done {
				t.Errorf("done = %v, want %v (%s; failed %q)", p.Done, tt.done, p.Line, p.Failed)
			}
			switch {
			case tt.failed == "" && p.Failed != "":
				t.Errorf("failed: %s; want no failure", p.Failed)
			case tt.failed != "" && !strings.Contains(p.Failed, tt.failed):
				t.Errorf("failed = %q, want it to say %q", p.Failed, tt.failed)
			}
			if p.NodeFault != tt.fault {
				t.Errorf("node fault %q, want %q", p.NodeFault, tt.fault)
			}
			if p.Stalled != tt.stalled {
				t.Errorf("stalled %v, want %v", p.Stalled, tt.stalled)
			}
			if p.Surplus != tt.surplus {
				t.Errorf("surplus %v, want %v", p.Surplus, tt.surplus)
			}
			if tt.lineHas != "" && !strings.Contains(p.Line, tt.lineHas) {
				t.Errorf("line %q, want %q", p.Line, tt.lineHas)
			}
		})
	}
}

// flakyObserver fails its first fails reads, then reports the service gone.
type flakyObserver struct{ fails int }

func (f *flakyObserver) ServiceInspect(context.Context, string, client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	if f.fails > 0 {
		f.fails--
		return client.ServiceInspectResult{}, errors.New("connection reset by peer")
	}
	return client.ServiceInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such service")
}

func (f *flakyObserver) TaskList(context.Context, client.TaskListOptions) (client.TaskListResult, error) {
	return client.TaskListResult{}, nil
}

func (f *flakyObserver) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	return client.NodeListResult{}, nil
}

// An endpoint that stops answering for a moment is waited for; one that
// stays silent longer than Blip fails the wait, naming why.
func TestWaitRidesOutABlip(t *testing.T) {
	watches := []Watch{{Name: "app", ID: "svc1", Gone: true}}
	var out strings.Builder
	err := Wait(t.Context(), &flakyObserver{fails: 3}, watches, Options{Deadline: time.Minute, Poll: time.Millisecond, Blip: time.Minute, Out: &out})
	if err != nil {
		t.Fatalf("three failed reads within the blip: %v", err)
	}
	if !strings.Contains(out.String(), "cannot observe (inspect service svc1: connection reset by peer); retrying") {
		t.Errorf("the blip is not reported:\n%s", out.String())
	}
	err = Wait(t.Context(), &flakyObserver{fails: 1 << 30}, watches, Options{Deadline: time.Minute, Poll: time.Millisecond, Blip: 20 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "app: the endpoint did not answer for 20ms") {
		t.Fatalf("an endpoint silent past the blip: %v", err)
	}
}

// hangingObserver never answers: each call waits for its context.
type hangingObserver struct{}

func (hangingObserver) ServiceInspect(ctx context.Context, _ string, _ client.ServiceInspectOptions) (client.ServiceInspectResult, error) {
	<-ctx.Done()
	return client.ServiceInspectResult{}, ctx.Err()
}

func (hangingObserver) TaskList(ctx context.Context, _ client.TaskListOptions) (client.TaskListResult, error) {
	<-ctx.Done()
	return client.TaskListResult{}, ctx.Err()
}

func (hangingObserver) NodeList(ctx context.Context, _ client.NodeListOptions) (client.NodeListResult, error) {
	<-ctx.Done()
	return client.NodeListResult{}, ctx.Err()
}

// A call the endpoint never answers is cut at the deadline: the wait ends
// there, as a missed deadline, not whenever the call returns.
func TestWaitBoundsACallByTheTimeLeft(t *testing.T) {
	start := time.Now()
	err := Wait(t.Context(), hangingObserver{}, []Watch{{Name: "app", ID: "svc1"}}, Options{Deadline: 100 * time.Millisecond, Poll: time.Millisecond, Blip: time.Hour})
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "app: not observed") {
		t.Fatalf("err = %v, want the deadline naming app", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a hung call held the wait %s past a 100ms deadline", took)
	}
}
