package deploy

import (
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

func rec(seq int, result ledger.Result, version, sha string) ledger.Record {
	return ledger.Record{Seq: seq, Result: result, Version: version, GitSHA: sha, Digest: "sha256:" + version,
		Services: map[string]ledger.ServiceRecord{"app": {Image: "r/app:" + version}}}
}

func TestPickRollback(t *testing.T) {
	// Newest first, as History.List returns them.
	history := []ledger.Record{
		rec(6, ledger.RolledBack, "v4", "dddddddd"),
		rec(5, ledger.Succeeded, "v3", "cccccccc"),
		rec(4, ledger.Succeeded, "v3", "cccccccc"), // a redeploy of the same release
		rec(3, ledger.Failed, "v2x", "bbbbbbbb"),
		rec(2, ledger.Succeeded, "v2", "bbbbbbbb"),
		rec(1, ledger.Succeeded, "v1", "aaaaaaaa"),
	}
	tests := []struct {
		name    string
		records []ledger.Record
		to      string
		running string // what the stack runs now, when it can be told
		want    int    // seq
		err     string // substring
	}{
		{name: "previous release, skipping failures and the same release", records: history, want: 2},
		{name: "two rollbacks toggle", records: append([]ledger.Record{func() ledger.Record {
			r := rec(7, ledger.Succeeded, "v2", "bbbbbbbb")
			r.Action = ledger.Rollback
			return r
		}()}, history...), want: 5},
		{name: "after a change left broken, the last release that served", records: append([]ledger.Record{rec(7, ledger.Failed, "v5", "eeeeeeee")}, history...), want: 5},
		{name: "by #N", records: history, to: "#1", want: 1},
		{name: "#N that failed", records: history, to: "#3", err: "#3 failed: only a successful release"},
		{name: "#N not kept", records: history, to: "#99", err: "#99 is not in the history (kept: #6 #5 #4 #3 #2 #1)"},
		{name: "by version", records: history, to: "v1", want: 1},
		{name: "by git sha prefix", records: history, to: "bbbbbbb", want: 2},
		{name: "a sha prefix too short to trust", records: history, to: "bbb", err: "no successful deploy"},
		{name: "unknown", records: history, to: "v9", err: `no successful deploy of "v9"`},
		{name: "nothing recorded", err: "nothing to roll back to"},
		{name: "only the current release", records: []ledger.Record{rec(2, ledger.Succeeded, "v1", "a"), rec(1, ledger.Succeeded, "v1", "a")}, err: "no earlier one"},
		{name: "not a number", records: history, to: "#x", err: "want N (or #N)"},
		{name: "by N, which needs no quoting in a shell", records: history, to: "1", want: 1},
		{name: "a long number is a git commit, not N", records: history, to: "1234567", err: `no successful deploy of "1234567"`},
		{name: "current is what runs: the release before it", records: history, running: "app=r/app:v2", want: 1},
		{name: "what runs is in no record (its record was not written): the newest recorded", records: history, running: "app=r/app:v9", want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickRollback(tt.records, tt.to, tt.running)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != tt.want {
				t.Errorf("picked #%d, want #%d", got.Seq, tt.want)
			}
		})
	}
}
