package deploy

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

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
