package converge

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// Constraints match as swarmkit's scheduler matches them
// (manager/constraint/constraint.go): a stricter check would refuse a
// deploy Swarm would place.
func TestMatchConstraints(t *testing.T) {
	n := swarm.Node{ID: "n1", Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager, Annotations: swarm.Annotations{Labels: map[string]string{"zone": "a"}}},
		Description: swarm.NodeDescription{Hostname: "Host1", Platform: swarm.Platform{OS: "linux", Architecture: "x86_64"},
			Engine: swarm.EngineDescription{Labels: map[string]string{"storage": "ssd"}}},
		Status: swarm.NodeStatus{Addr: "10.0.0.5"}}
	tests := []struct {
		name    string
		c       []string
		want    bool
		unknown []string
		err     string
	}{
		{name: "none", want: true},
		{name: "role", c: []string{"node.role == manager"}, want: true},
		{name: "another role", c: []string{"node.role==worker"}},
		{name: "two", c: []string{"node.role != worker", "node.hostname == host1"}, want: true},
		{name: "a value in another case", c: []string{"node.role == MANAGER"}, want: true},
		{name: "a key in another case", c: []string{"Node.Role == manager", "NODE.PLATFORM.OS == linux"}, want: true},
		{name: "label", c: []string{"node.labels.zone == a"}, want: true},
		{name: "label value in another case", c: []string{"node.labels.zone == A"}, want: true},
		{name: "label prefix in another case", c: []string{"Node.Labels.zone == a"}, want: true},
		{name: "a label's name keeps its case", c: []string{"node.labels.Zone == a"}},
		{name: "missing label !=", c: []string{"node.labels.missing != x"}, want: true},
		{name: "missing label ==", c: []string{"node.labels.missing == x"}},
		{name: "engine label", c: []string{"engine.labels.storage == SSD"}, want: true},
		{name: "ip", c: []string{"node.ip == 10.0.0.5"}, want: true},
		{name: "ip !=", c: []string{"node.ip != 10.0.0.5"}},
		{name: "ip in a subnet", c: []string{"node.ip == 10.0.0.0/24", "node.ip != 10.1.0.0/16"}, want: true},
		{name: "ip not in a subnet", c: []string{"node.ip == 10.1.0.0/16"}},
		{name: "ip, malformed", c: []string{"node.ip == ten"}, err: `"ten" is neither an IP address nor a CIDR subnet`},
		{name: "an unknown key is not evaluated", c: []string{"node.colour == red", "node.role == manager"}, want: true, unknown: []string{"node.colour == red"}},
		{name: "no operator", c: []string{"node.role"}, err: "want key==value or key!=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unknown, err := MatchConstraints(tt.c, n)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want || !slices.Equal(unknown, tt.unknown) {
				t.Errorf("MatchConstraints(%q) = %v, %q, %v; want %v, %q", tt.c, got, unknown, err, tt.want, tt.unknown)
			}
		})
	}
}
