package deploy

import (
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/moby/moby/api/types/swarm"
)

// Scale refuses what it cannot do, naming the value at fault, before it
// changes anything; what it can do changes the replicas and nothing else.
func TestScale(t *testing.T) {
	tests := []struct {
		name     string
		service  string
		replicas int
		global   bool // the stack also has a global service "agent"
		wantExit int
		wantOut  string
	}{
		{name: "within max_replicas", service: "app", replicas: 3, wantOut: "app: 1 -> 3 replicas"},
		{name: "to zero", service: "app", replicas: 0, wantOut: "app: 1 -> 0 replicas"},
		{name: "negative", service: "app", replicas: -1, wantExit: ExitRefused, wantOut: "-1: want 0 or more"},
		{name: "above max_replicas", service: "app", replicas: 5, wantExit: ExitRefused, wantOut: "5: environment staging allows at most 4 (max_replicas in deploy/environments.yml)"},
		{name: "unknown service", service: "web", replicas: 1, wantExit: ExitRefused, wantOut: `stack svc has no service "web"; it has: app`},
		{name: "global service", service: "agent", replicas: 1, global: true, wantExit: ExitRefused, wantOut: "agent is not a replicated service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api, out := testSession(t, 1)
			if tt.global {
				api.AddService(withDefaults(swarm.ServiceSpec{
					Annotations:  swarm.Annotations{Name: "svc_agent", Labels: map[string]string{StackLabel: "svc"}},
					TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "registry.example/agent:v1@" + digestV2}},
					Mode:         swarm.ServiceMode{Global: &swarm.GlobalService{}},
				}))
			}
			err := s.Scale(t.Context(), tt.service, tt.replicas, false)
			if got := exitCode(err); got != tt.wantExit {
				t.Fatalf("exit %d, want %d: %v\n%s", got, tt.wantExit, err, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
			svc, _ := api.Service("svc_app")
			want := uint64(1)
			if tt.wantExit == 0 {
				want = uint64(tt.replicas)
				if len(api.Calls) != 1 || !strings.HasPrefix(api.Calls[0], "update svc_app ") {
					t.Errorf("calls %q, want one update of svc_app", api.Calls)
				}
			} else if len(api.Calls) != 0 {
				t.Errorf("refused, yet changed: %q", api.Calls)
			}
			if got := *svc.Spec.Mode.Replicated.Replicas; got != want {
				t.Errorf("svc_app has %d replicas, want %d", got, want)
			}
		})
	}
}

// A stack with nothing in it is one never deployed: the refusal says what
// to do rather than list nothing.
func TestNoService(t *testing.T) {
	env := &envfile.Environment{Name: "staging", Stack: "svc"}
	for _, tt := range []struct {
		have []string
		want string
	}{
		{[]string{"app", "postgres"}, `stack svc has no service "web"; it has: app, postgres`},
		{nil, `stack svc has no service "web": it runs nothing (deploy it first: go tool mage deploy:to staging)`},
	} {
		if got := noService(env, "web", tt.have).Error(); got != tt.want {
			t.Errorf("noService(%q) = %q, want %q", tt.have, got, tt.want)
		}
	}
}
