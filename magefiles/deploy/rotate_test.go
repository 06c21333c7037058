package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

// A rotation that preflight refuses, or a dry run, leaves the Swarm's
// secrets as they were: a version left behind would be picked up, silently,
// by the next deploy. One that goes through leaves the new version, used.
func TestRotateLeavesNoVersionUnlessItMoves(t *testing.T) {
	tests := []struct {
		name   string
		smoke  *envfile.Smoke
		dryRun bool
		code   int      // the exit code
		want   []string // the secrets left of stack svc
	}{
		// The smoke check is refused after the build step, with the other
		// checks of the whole pipeline (nodes, smoke).
		{name: "refused after the build step", smoke: &envfile.Smoke{Service: "nope", Port: 8080, Path: "/", Timeout: time.Second},
			code: ExitRefused, want: []string{"svc_database_url_v1"}},
		{name: "dry run", dryRun: true, want: []string{"svc_database_url_v1"}},
		{name: "moves", want: []string{"svc_database_url_v1", "svc_database_url_v2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api, out := testSession(t, 0)
			s.Env.Smoke = tt.smoke
			err := s.Rotate(t.Context(), "database_url", secret.New("postgres://new"), tt.dryRun)
			if code := exitCode(err); (err == nil) != (tt.code == 0) || (err != nil && code != tt.code) {
				t.Fatalf("rotate = %v (exit %d), want exit %d\n%s", err, code, tt.code, out.String())
			}
			var left []string
			for _, sec := range api.Secrets() {
				left = append(left, sec.Spec.Name)
			}
			slices.Sort(left)
			if !slices.Equal(left, tt.want) {
				t.Errorf("secrets after the rotation %v, want %v\n%s", left, tt.want, out.String())
			}
			app, _ := api.Service("svc_app")
			if uses := app.Spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName; uses != tt.want[len(tt.want)-1] {
				t.Errorf("the app uses %s, want %s", uses, tt.want[len(tt.want)-1])
			}
			if tt.code != 0 && !strings.Contains(out.String(), "removed svc_database_url_v2") {
				t.Errorf("the output does not say the version made was removed:\n%s", out.String())
			}
		})
	}
}
