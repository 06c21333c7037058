package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/internal/fakeswarm"
)

// The nodes check refuses what no node runs, and only warns of a key it
// does not know.
func TestCheckNodes(t *testing.T) {
	api := fakeswarm.New()
	tests := []struct {
		name        string
		constraints []string
		ok, err     string // substrings of the line
	}{
		{name: "matches", constraints: []string{"node.role == Manager"}, ok: "1 ready"},
		{name: "an unknown key", constraints: []string{"node.colour == red"},
			ok: `1 ready; warning: service app: ["node.colour == red"] not checked`},
		{name: "no node", constraints: []string{"node.role == worker"}, err: "service app: no ready node matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs Checks
			checkNodes(t.Context(), api, map[string]swarm.ServiceSpec{"app": {TaskTemplate: swarm.TaskSpec{Placement: &swarm.Placement{Constraints: tt.constraints}}}}, &cs)
			if len(cs) != 1 {
				t.Fatalf("checks %+v", cs)
			}
			switch c := cs[0]; {
			case tt.err != "" && (c.Err == nil || !strings.Contains(c.Err.Error(), tt.err)):
				t.Errorf("nodes: %v, want %q", c.Err, tt.err)
			case tt.err == "" && (c.Err != nil || !strings.Contains(c.OK, tt.ok)):
				t.Errorf("nodes: %q, %v; want %q", c.OK, c.Err, tt.ok)
			}
		})
	}
}

// nodeStates answers NodeList with one node whose state is the next of
// states each time (the last one once they run out).
type nodeStates struct {
	states []swarm.NodeState
	calls  int
}

func (n *nodeStates) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	st := n.states[min(n.calls, len(n.states)-1)]
	n.calls++
	node := swarm.Node{Description: swarm.NodeDescription{Hostname: "m1"}, Status: swarm.NodeStatus{State: st},
		Spec: swarm.NodeSpec{Availability: swarm.NodeAvailabilityActive}}
	return client.NodeListResult{Items: []swarm.Node{node}}, nil
}

// Just after a leader change the new leader knows no node's state: the
// check waits for the nodes to report rather than refuse a healthy Swarm,
// and says what it saw when they never do.
func TestCheckNodesWaitsForUnknownNodes(t *testing.T) {
	defer func(d time.Duration) { unknownNodesWait = d }(unknownNodesWait)
	unknownNodesWait = 3 * time.Second
	app := map[string]swarm.ServiceSpec{"app": {}}

	var cs Checks
	api := &nodeStates{states: []swarm.NodeState{swarm.NodeStateUnknown, swarm.NodeStateUnknown, swarm.NodeStateReady}}
	checkNodes(t.Context(), api, app, &cs)
	if cs[0].Err != nil || api.calls != 3 {
		t.Errorf("after two unknown answers then ready: %v after %d calls, want ok after 3", cs[0].Err, api.calls)
	}

	unknownNodesWait = time.Second
	cs = nil
	checkNodes(t.Context(), &nodeStates{states: []swarm.NodeState{swarm.NodeStateUnknown}}, app, &cs)
	if cs[0].Err == nil || !strings.Contains(cs[0].Err.Error(), "not ready or not active: m1 (unknown, active)") {
		t.Errorf("nodes that never report: %v, want a refusal naming m1's unknown state", cs[0].Err)
	}
}
