package deploy

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Restore picks, per touched service, the way back to its kept spec.
// Specs with zero replicas converge at once, so only the choices are
// tested here; the end-to-end suite watches real ones.
func TestRestore(t *testing.T) {
	zero := uint64(0)
	spec := func(name, image string) swarm.ServiceSpec {
		return WithDefaults(swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "svc_" + name},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		})
	}
	v1, v2 := "r/app:v1@sha256:1", "r/app:v2@sha256:2"
	kept := map[string]*swarm.ServiceSpec{}
	for _, name := range []string{"rolledback", "previous", "older", "removed"} {
		s := spec(name, v1)
		kept[name] = &s
	}
	kept["created"] = nil
	kept["lostcreate"] = nil   // created, but the answer never came
	kept["nevercreated"] = nil // the create failed
	prev := spec("previous", v1)
	api := &fakeServices{fakeSwarm: newFakeSwarm(), services: map[string]swarm.Service{
		// Swarm rolled it back already: nothing to do.
		"rolledback": {ID: "a", Spec: spec("rolledback", v1)},
		// Swarm's one previous spec is the kept one: its own rollback.
		"previous": {ID: "b", Spec: spec("previous", v2), PreviousSpec: &prev},
		// Its previous spec is something else: an update to the kept spec.
		"older":      {ID: "c", Spec: spec("older", v2), PreviousSpec: func() *swarm.ServiceSpec { s := spec("older", "r/app:v0@sha256:0"); return &s }()},
		"created":    {ID: "d", Spec: spec("created", v2)},
		"lostcreate": {ID: "f", Spec: spec("lostcreate", v2)},
	}}
	a := &Applied{Kept: kept, IDs: map[string]string{"rolledback": "a", "previous": "b", "older": "c", "created": "d", "removed": "e"}}
	// The networks cannot be read: the restore goes on regardless.
	err := Restore(t.Context(), api, "svc", a, func(context.Context) (map[string]string, error) { return nil, errors.New("network list: EOF") },
		func(context.Context, string) (string, error) { return "", nil },
		ConvergeOptions{Deadline: 5 * time.Second, Poll: 10 * time.Millisecond, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"remove d",
		"remove f",
		`update svc_older rollback="" image=r/app:v1@sha256:1`,
		`update svc_previous rollback="previous" image=r/app:v2@sha256:2`,
		"create svc_removed",
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(api.calls))
	if !slices.Equal(got, want) {
		t.Errorf("restore made\n%q\nwant\n%q", got, want)
	}
}
