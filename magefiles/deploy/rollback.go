package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rollback puts back a recorded release: with to empty, the last
// successful release before the one running now (so two rollbacks in a
// row toggle between the last two); otherwise the successful record named
// by version (v1.2.3), git commit (a prefix of 7 or more) or #N. It runs
// the deploy's pipeline and never runs down-migrations.
func (d *Deployer) Rollback(ctx context.Context, to string, dryRun bool) error {
	start := time.Now()
	fmt.Fprintf(d.Out, "Rolling back %s (stack %s) through %s\n", d.Env.Name, d.Env.Stack, d.Endpoint)
	var cs Checks
	if !checkManager(ctx, d.API, d.Endpoint, &cs) {
		cs.Print(d.Out)
		return Refused(cs.Err())
	}
	records, err := History{API: d.API, Stack: d.Env.Stack}.List(ctx)
	if err != nil {
		return Refused(err)
	}
	target, err := PickRollback(records, to)
	if err != nil {
		cs.Add("target", "", err)
		cs.Print(d.Out)
		return Refused(err)
	}
	cs.Add("target", fmt.Sprintf("#%d: %s (%s), deployed %s by %s", target.Seq, target.Version, shortDigest(target.Digest), target.Started.Local().Format(time.DateTime), target.Who), nil)
	return d.run(ctx, start, &cs, "rollback", dryRun, "", func(live *Live, cs *Checks) (*Desired, Release, int, error) {
		desired := specsOf(d.Env.Stack, target.Services)
		if !d.relinkSecrets(desired, live, cs) {
			return nil, Release{}, 0, nil
		}
		var errs []string
		for _, name := range slices.Sorted(maps.Keys(desired.Services)) {
			img := desired.Services[name].TaskTemplate.ContainerSpec.Image
			if _, err := d.Registry.Digest(ctx, img); err != nil {
				errs = append(errs, fmt.Sprintf("service %s: %v", name, err))
			}
		}
		if len(errs) > 0 {
			cs.Add("images", "", errors.New(strings.Join(errs, "; ")))
			return nil, Release{}, 0, nil
		}
		cs.Add("images", "every recorded digest is still in its registry", nil)
		return desired, Release{}, target.Seq, nil
	})
}

// relinkSecrets points the recorded specs' secret references at the
// newest version of each logical secret: a rollback restores code, not old
// credentials (they may have been revoked or pruned since).
func (d *Deployer) relinkSecrets(desired *Desired, live *Live, cs *Checks) bool {
	versions := VersionsOf(d.Env.Stack, slices.Collect(maps.Values(live.Secrets)))
	need := relink(d.Env.Stack, desired.Services, versions)
	return checkSecrets(desired.Services, need, live, d.Env.Name, cs)
}

// PickRollback chooses the record a rollback goes back to.
func PickRollback(records []Record, to string) (Record, error) {
	var ok []Record
	for _, r := range records {
		if r.Result == Succeeded && len(r.Services) > 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return Record{}, errors.New("no successful deploy is recorded: there is nothing to roll back to")
	}
	if to == "" {
		if len(records) > 0 && records[0].Result == Failed {
			// The newest change failed and was not restored: the last
			// release that served is the one to go back to.
			return ok[0], nil
		}
		current := releaseKey(ok[0])
		for _, r := range ok[1:] {
			if releaseKey(r) != current {
				return r, nil
			}
		}
		return Record{}, fmt.Errorf("every recorded successful deploy (%d) is the release running now: there is no earlier one", len(ok))
	}
	if n, found := strings.CutPrefix(to, "#"); found {
		seq, err := strconv.Atoi(n)
		if err != nil {
			return Record{}, fmt.Errorf("%q: want #N, a version or a git commit", to)
		}
		for _, r := range records {
			if r.Seq == seq {
				if r.Result != Succeeded {
					return Record{}, fmt.Errorf("#%d %s: only a successful release can be restored", seq, r.Result)
				}
				return r, nil
			}
		}
		return Record{}, fmt.Errorf("#%d is not in the history (kept: %s)", seq, seqs(records))
	}
	for _, r := range ok {
		if r.Version == to || (len(to) >= 7 && strings.HasPrefix(r.GitSHA, to)) {
			return r, nil
		}
	}
	return Record{}, fmt.Errorf("no successful deploy of %q is recorded (by version or git commit); see deploy:history", to)
}

// releaseKey says which release a record ran: the images of its services.
func releaseKey(r Record) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(r.Services)) {
		parts = append(parts, name+"="+r.Services[name].Image)
	}
	return strings.Join(parts, " ")
}

func seqs(records []Record) string {
	var s []string
	for _, r := range records {
		s = append(s, "#"+strconv.Itoa(r.Seq))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
