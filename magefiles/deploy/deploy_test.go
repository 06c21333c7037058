package deploy

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// The promotion gate accepts only a digest that served: a change that
// converged with it running at more than 0 replicas and, where the source
// has a smoke check, that check passed.
func TestServed(t *testing.T) {
	one, zero := uint64(1), uint64(0)
	rec := func(seq int, result ledger.Result, digest string, replicas *uint64, smoke string) ledger.Record {
		return ledger.Record{Seq: seq, Result: result, Smoke: smoke, Services: map[string]ledger.ServiceRecord{
			"app":      {Image: "r/app:v1@" + digest, Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: replicas}}}},
			"postgres": {Image: "postgres@sha256:pg", Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}}},
		}}
	}
	tests := []struct {
		name    string
		records []ledger.Record
		smoke   bool
		want    int // seq, 0 for none
	}{
		{"served", []ledger.Record{rec(1, ledger.Succeeded, digestV2, &one, ledger.SmokePassed)}, true, 1},
		{"at 0 replicas", []ledger.Record{rec(1, ledger.Succeeded, digestV2, &zero, ledger.SmokeSkipped)}, true, 0},
		{"at 0 replicas, no smoke check", []ledger.Record{rec(1, ledger.Succeeded, digestV2, &zero, "")}, false, 0},
		{"smoke check not passed", []ledger.Record{rec(1, ledger.Succeeded, digestV2, &one, "")}, true, 0},
		{"no smoke check configured", []ledger.Record{rec(1, ledger.Succeeded, digestV2, &one, "")}, false, 1},
		{"rolled back", []ledger.Record{rec(1, ledger.RolledBack, digestV2, &one, "")}, false, 0},
		{"another digest", []ledger.Record{rec(1, ledger.Succeeded, digestV3, &one, ledger.SmokePassed)}, true, 0},
		{"a later scale to 0 does not undo an earlier serve", []ledger.Record{rec(2, ledger.Succeeded, digestV2, &zero, ledger.SmokeSkipped), rec(1, ledger.Succeeded, digestV2, &one, ledger.SmokePassed)}, true, 1},
	}
	for _, tt := range tests {
		r, ok := served(tt.records, digestV2, tt.smoke)
		got := 0
		if ok {
			got = r.Seq
		}
		if got != tt.want {
			t.Errorf("%s: served in #%d, want #%d", tt.name, got, tt.want)
		}
	}
}

// A protected environment runs only what its key signed: preflight says
// what is missing, and -override skips the check only where the
// environment allows it.
func TestSignatureCheck(t *testing.T) {
	for _, tt := range []struct {
		name     string
		signed   bool
		override string
		allow    bool
		want     string // in the signature line
		code     int
	}{
		{name: "signed", signed: true, want: "ok    signature  signed by fakekey"},
		{name: "unsigned", want: "FAIL  signature  verify: no signature for " + digestV3, code: ExitRefused},
		{name: "unsigned, -override not allowed", override: "hotfix", want: "-override does not skip this check here", code: ExitRefused},
		{name: "unsigned, -override allowed", override: "hotfix", allow: true, want: "not checked: -override, which verify.allow_override allows"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _, out := testSession(t, 0)
			s.Env.Verify = &envfile.Verify{Key: "k", AllowOverride: tt.allow}
			if tt.signed {
				s.Registry.(fakeResolver)["signed@"+digestV3] = "yes"
			}
			err := s.Deploy(t.Context(), DeployOptions{Image: "registry.example/app:v3", Override: tt.override, DryRun: true})
			if exitCode(err) != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d (%v), want %d and %q:\n%s", exitCode(err), err, tt.code, tt.want, out.String())
			}
		})
	}
}
