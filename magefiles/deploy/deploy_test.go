package deploy

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"

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
