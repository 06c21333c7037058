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

	"github.com/moby/moby/api/types/swarm"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// Rollback puts back a recorded release: with to empty, the last
// successful release before the one running now (so two rollbacks in a
// row toggle between the last two); otherwise the successful record named
// by version (v1.2.3), git commit (a prefix of 7 or more), #N or N. It
// runs the deploy's pipeline and never runs down-migrations.
func (s *Session) Rollback(ctx context.Context, to string, dryRun bool) error {
	what := "the release before the one running"
	if to != "" {
		what = "the release recorded as " + to
	}
	c := Change{Action: ledger.Rollback, What: what, DryRun: dryRun}
	c.Prepare = func(ctx context.Context, live *Live, cs *Checks) *Target {
		records, err := ledger.History{API: s.API, Stack: s.Env.Stack}.List(ctx)
		if err != nil {
			cs.Add("target", "", err)
			return nil
		}
		target, err := pickRollback(records, to, running(live))
		if err != nil {
			cs.Add("target", "", err)
			return nil
		}
		cs.Add("target", fmt.Sprintf("#%d: %s (%s), deployed %s by %s", target.Seq, target.Version, shortDigest(target.Digest), target.Started.Local().Format(time.DateTime), target.Who), nil)
		desired := specsOf(s.Env.Stack, target.Services)
		if !s.relinkSecrets(desired, live, cs) {
			return nil
		}
		var errs []string
		for _, name := range slices.Sorted(maps.Keys(desired.Services)) {
			img := desired.Services[name].TaskTemplate.ContainerSpec.Image
			if _, err := s.Registry.Digest(ctx, img); err != nil {
				errs = append(errs, fmt.Sprintf("service %s: %v", name, err))
			}
		}
		if len(errs) > 0 {
			cs.Add("images", "", errors.New(strings.Join(errs, "; ")))
			return nil
		}
		cs.Add("images", "every recorded digest is still in its registry", nil)
		return &Target{Desired: desired, RollbackTo: target.Seq}
	}
	return s.Run(ctx, c)
}

// relinkSecrets points the recorded specs' secret references at the
// newest version of each logical secret: a rollback restores code, not old
// credentials (they may have been revoked or pruned since).
func (s *Session) relinkSecrets(desired *Desired, live *Live, cs *Checks) bool {
	versions := versionsOf(s.Env.Stack, slices.Collect(maps.Values(live.Secrets)))
	need := relink(s.Env.Stack, desired.Services, versions)
	return checkSecrets(desired.Services, need, live, s.Env.Name, cs)
}

// running is the release the live stack runs, in the form of releaseKey:
// what a rollback goes back from, whatever the newest record says (a
// change whose record could not be written still runs).
func running(live *Live) string {
	images := map[string]string{}
	for name, svc := range live.Services {
		images[name] = ImageOf(svc.Spec).Ref
	}
	return keyOf(images)
}

// specsOf turns recorded services back into a desired state.
func specsOf(stack string, services map[string]ledger.ServiceRecord) *Desired {
	d := &Desired{Stack: stack, Services: map[string]swarm.ServiceSpec{}}
	for name, svc := range services {
		d.Services[name] = svc.Spec
	}
	return d
}

// pickRollback chooses the record a rollback goes back to. current is
// the release running now (running); "" when it cannot be told.
func pickRollback(records []ledger.Record, to, current string) (ledger.Record, error) {
	var ok []ledger.Record
	for _, r := range records {
		if r.Result == ledger.Succeeded && len(r.Services) > 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return ledger.Record{}, errors.New("no successful deploy is recorded: there is nothing to roll back to")
	}
	if to == "" {
		if len(records) > 0 && records[0].Result == ledger.Failed {
			// The newest change failed and was not restored: the last
			// release that served is the one to go back to.
			return ok[0], nil
		}
		// The release before the one running: older than the newest record
		// of what runs. What runs may be in no record (its change could not
		// write one): then the newest recorded release is the one before it.
		if current == "" {
			current = releaseKey(ok[0])
		}
		from := slices.IndexFunc(ok, func(r ledger.Record) bool { return releaseKey(r) == current })
		for _, r := range ok[max(from, 0):] {
			if releaseKey(r) != current {
				return r, nil
			}
		}
		return ledger.Record{}, fmt.Errorf("every recorded successful deploy (%d) is the release running now: there is no earlier one", len(ok))
	}
	if n, found := strings.CutPrefix(to, "#"); found || isSeq(to) {
		if !found {
			n = to
		}
		seq, err := strconv.Atoi(n)
		if err != nil {
			return ledger.Record{}, fmt.Errorf("%q: want N (or #N), a version or a git commit", to)
		}
		for _, r := range records {
			if r.Seq == seq {
				if r.Result != ledger.Succeeded {
					return ledger.Record{}, fmt.Errorf("#%d %s: only a successful release can be restored", seq, r.Result)
				}
				return r, nil
			}
		}
		return ledger.Record{}, fmt.Errorf("#%d is not in the history (kept: %s)", seq, seqs(records))
	}
	for _, r := range ok {
		if r.Version == to || (len(to) >= 7 && strings.HasPrefix(r.GitSHA, to)) {
			return r, nil
		}
	}
	return ledger.Record{}, fmt.Errorf("no successful deploy of %q is recorded (by version or git commit); see deploy:history", to)
}

// isSeq reports whether to is a record's number without its #: a bare
// number shorter than the 7 digits that could start a git commit. #
// starts a comment in a shell, so this form needs no quoting.
func isSeq(to string) bool {
	if to == "" || len(to) >= 7 {
		return false
	}
	_, err := strconv.Atoi(to)
	return err == nil
}

// releaseKey says which release a record ran: the images of its services.
func releaseKey(r ledger.Record) string {
	images := map[string]string{}
	for name, svc := range r.Services {
		images[name] = svc.Image
	}
	return keyOf(images)
}

func keyOf(images map[string]string) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(images)) {
		parts = append(parts, name+"="+images[name])
	}
	return strings.Join(parts, " ")
}

func seqs(records []ledger.Record) string {
	var s []string
	for _, r := range records {
		s = append(s, "#"+strconv.Itoa(r.Seq))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
