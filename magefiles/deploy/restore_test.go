package deploy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/converge"
	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
)

func restoreSpec(name, image string, labels ...string) swarm.ServiceSpec {
	zero := uint64(0)
	spec := withDefaults(swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "svc_" + name, Labels: map[string]string{StackLabel: "svc"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
	})
	for i := 0; i+1 < len(labels); i += 2 {
		spec.Labels[labels[i]] = labels[i+1]
	}
	return spec
}

// planRestore picks, per touched service, the way back to its kept spec;
// a service this change did not create is never removed.
func TestPlanRestore(t *testing.T) {
	v0, v1, v2 := "r/app:v0@sha256:0", "r/app:v1@sha256:1", "r/app:v2@sha256:2"
	keep := func(name string) *swarm.ServiceSpec { s := restoreSpec(name, v1); return &s }
	svc := func(id, name, image string, previous *swarm.ServiceSpec, labels ...string) swarm.Service {
		return swarm.Service{ID: id, Spec: restoreSpec(name, image, labels...), PreviousSpec: previous}
	}
	tests := []struct {
		name    string
		kept    *swarm.ServiceSpec
		id      string // the ID the change's create or update knew
		current *swarm.Service
		want    restoreKind
	}{
		{"Swarm rolled it back already", keep("a"), "a", ptr(svc("a", "a", v1, nil)), restoreNothing},
		{"Swarm's one previous spec is the kept one", keep("b"), "b", ptr(svc("b", "b", v2, keep("b"))), restoreRollback},
		{"its previous spec is another", keep("c"), "c", ptr(svc("c", "c", v2, ptr(restoreSpec("c", v0)))), restoreUpdate},
		{"the owner label does not count as a difference", keep("l"), "l", ptr(svc("l", "l", v1, nil, ownerLabel, "3.old")), restoreNothing},
		{"removed by the change", keep("d"), "d", nil, restoreCreate},
		{"created by the change", nil, "e", ptr(svc("e", "e", v2, nil)), restoreRemove},
		{"created, the answer lost: its label proves it", nil, "", ptr(svc("f", "f", v2, nil, ownerLabel, "7.abcdef")), restoreRemove},
		{"created, the answer lost, and gone", nil, "", nil, restoreGone},
		{"the create failed on a name another stack has", nil, "", ptr(svc("g", "g", v2, nil, StackLabel, "svc_x")), restoreLeave},
		{"another change's service of that name", nil, "", ptr(svc("h", "h", v2, nil, ownerLabel, "6.zzzzzz")), restoreLeave},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplied("7.abcdef")
			a.Kept["s"], a.IDs["s"] = tt.kept, tt.id
			current := map[string]swarm.Service{}
			if tt.current != nil {
				current["s"] = *tt.current
			}
			steps := planRestore(a, current, nil)
			if len(steps) != 1 || steps[0].Kind != tt.want {
				t.Fatalf("steps %+v, want kind %d", steps, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// The restore makes the calls its plan says, against a Swarm, and goes on
// when the network list cannot be read.
func TestRestore(t *testing.T) {
	v0, v1, v2 := "r/app:v0@sha256:0", "r/app:v1@sha256:1", "r/app:v2@sha256:2"
	api := fakeswarm.New()
	ids := map[string]string{}
	for name, image := range map[string]string{"rolledback": v1, "previous": v2, "older": v2, "created": v2, "lostcreate": v2, "theirs": v2} {
		spec := restoreSpec(name, image)
		if name == "lostcreate" {
			spec = owned(spec, "7.abcdef")
		}
		ids[name] = api.AddService(spec)
	}
	// Give previous and older the previous specs Swarm would keep.
	prev, older := restoreSpec("previous", v1), restoreSpec("older", v0)
	mustUpdate := func(name string, to swarm.ServiceSpec, then swarm.ServiceSpec) {
		t.Helper()
		svc, _ := api.Service("svc_" + name)
		if _, err := api.ServiceUpdate(t.Context(), svc.ID, clientUpdate(to)); err != nil {
			t.Fatal(err)
		}
		svc, _ = api.Service("svc_" + name)
		if _, err := api.ServiceUpdate(t.Context(), svc.ID, clientUpdate(then)); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate("previous", prev, restoreSpec("previous", v2))
	mustUpdate("older", older, restoreSpec("older", v2))
	api.Calls = nil
	a := newApplied("7.abcdef")
	for _, name := range []string{"rolledback", "previous", "older", "removed"} {
		a.Kept[name] = ptr(restoreSpec(name, v1))
		a.IDs[name] = ids[name]
	}
	a.Kept["created"], a.IDs["created"] = nil, ids["created"]
	a.Kept["lostcreate"] = nil
	a.Kept["nevercreated"] = nil
	a.Kept["theirs"] = nil // the create collided with another stack's service
	api.Err = map[string]error{"NetworkList": errors.New("network list: EOF")}
	var out strings.Builder
	err := restore(t.Context(), api, "svc", a, noAuth, converge.Options{Deadline: 5 * time.Second, Poll: time.Millisecond, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create svc_removed",
		"remove svc_created",
		"remove svc_lostcreate",
		"rollback svc_previous",
		"update svc_older image=" + v1,
	}
	got := slices.Sorted(slices.Values(api.Calls))
	if !slices.Equal(got, want) {
		t.Errorf("restore made\n%q\nwant\n%q\n%s", got, want, out.String())
	}
	if !strings.Contains(out.String(), "leaving service svc_theirs alone") {
		t.Errorf("the other stack's service is not said to be left alone:\n%s", out.String())
	}
	if _, ok := api.Service("svc_theirs"); !ok {
		t.Error("the restore removed a service this change did not create")
	}
}

func clientUpdate(spec swarm.ServiceSpec) client.ServiceUpdateOptions {
	return client.ServiceUpdateOptions{Spec: spec}
}
