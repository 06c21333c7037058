package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/deploy/notify"
)

// Change is what sets a deploy, a rollback, a scale and a rotation apart;
// Session.Run takes each through the same pipeline.
type Change struct {
	Action   ledger.Action
	What     string // what it installs, for the first line: "release v1.2.3", "app at 3 replicas"
	DryRun   bool
	Override string // why a protected deploy's checks were skipped; recorded

	// Offline adds the checks that need neither the engine nor a registry
	// (flags, the git tree, the stack files): they run first, so that a
	// dead endpoint never hides a dirty tree.
	Offline func(cs *Checks)
	// Registry adds the checks that need a registry but not the engine.
	Registry func(ctx context.Context, cs *Checks)
	// Prepare computes, from the live stack (read under the lock), what the
	// change installs, adding its checks; nil when one of them failed.
	Prepare func(ctx context.Context, live *Live, cs *Checks) *Target
	// Undo runs when the change did not go through (refused, restored or
	// broken): a rotation removes the secret version it made.
	Undo func()
	// Before, when set, runs under the lock once the plan is printed and
	// before anything is applied (deploy:proxy labels the node that keeps
	// the certificates); an error refuses the change.
	Before func(ctx context.Context) error
}

// Target is what a change installs.
type Target struct {
	Desired    *Desired
	Release    Release // the release's image; empty when the change keeps those it finds
	RollbackTo int     // the record a rollback goes back to
}

// header is the first line of every change, which says whether it is a
// dry run.
func (s *Session) header(c Change) string {
	mode := "not a dry run: this changes the stack"
	if c.DryRun {
		mode = "dry run: nothing will be changed"
	}
	return fmt.Sprintf("%s of %s (stack %s) through %s: %s [%s]", titleCase(string(c.Action)), s.Env.Name, s.Env.Stack, s.Endpoint, c.What, mode)
}

// Run makes a change: preflight, plan, apply, converge, smoke, and on
// failure the whole-stack restore; then the record and the events. The
// error carries the exit code (ExitError).
func (s *Session) Run(ctx context.Context, c Change) error {
	start := time.Now()
	fmt.Fprintln(s.Out, s.header(c))
	cs := &Checks{}
	undo := func() {
		if c.Undo != nil {
			c.Undo()
		}
	}

	// 1. Preflight: what needs no engine, then the registry, then the
	// endpoint, the lock and the live stack.
	if c.Offline != nil {
		c.Offline(cs)
	}
	if c.Registry != nil {
		c.Registry(ctx, cs)
	}
	managerStart, ok := s.checkManager(ctx, cs)
	if !ok {
		cs.NotRun("lock", "needs the endpoint")
		cs.Print(s.Out)
		return cs.Refusal(string(c.Action))
	}
	unlock := s.lockForPreflight(ctx, c, cs)
	defer unlock()
	live, err := readLive(ctx, s.API, s.Env.Stack)
	if err != nil {
		cs.Add("stack", "", err)
		cs.Print(s.Out)
		return cs.Refusal(string(c.Action))
	}
	target := c.Prepare(ctx, live, cs)
	if target != nil {
		s.checkTarget(ctx, target.Desired, live, cs)
	}
	cs.Print(s.Out)
	if cs.Failed() || target == nil {
		undo()
		return cs.Refusal(string(c.Action))
	}

	// 2. Plan.
	plan := makePlan(s.Env.Name, target.Release, target.Desired, live)
	if c.Action == ledger.Deploy {
		// Rollbacks, scales and rotations never migrate: only a deploy asks.
		plan.Migrations = s.askMigrations(ctx, plan)
	}
	plan.Print(s.Out)
	if c.DryRun {
		fmt.Fprintln(s.Out, "Dry run: nothing was changed.")
		return nil
	}
	if c.Before != nil {
		if err := c.Before(ctx); err != nil {
			undo()
			return Refused(err)
		}
	}
	rec := s.newRecord(c, target, start)
	history := ledger.History{API: s.API, Stack: s.Env.Stack, Keep: s.Env.History}
	if rec.Seq, err = history.Next(ctx); err != nil {
		undo()
		return Refused(err)
	}
	if plan.Empty() {
		fmt.Fprintln(s.Out, "Nothing to change: the stack already runs this.")
		rec.Result, rec.Reason, rec.Duration = ledger.Succeeded, "nothing to change", time.Since(start)
		return s.record(history, rec, outcome{Result: ledger.Succeeded})
	}
	events := s.notifier()
	// Closed after the lock is released (deferred later, so run earlier):
	// a slow webhook holds the process for its timeout, never the lock.
	defer events.Close()
	events.Send(eventOf(notify.Start, rec))

	// 3-4. Apply, converge, smoke.
	fmt.Fprintln(s.Out, "Applying:")
	applied := newApplied(fmt.Sprintf("%d.%s", rec.Seq, strings.ToLower(rand.Text()[:6])))
	applyErr, panicked := s.applySafely(ctx, plan, live, applied, c.Action == ledger.Deploy, s.expectedVersion(ctx, target.Desired, rec.Version), &rec)

	// 5. Restore what a failure (or Ctrl-C, or a panic) left half-done.
	var restoreErr error
	if applyErr != nil && applied.Changed() {
		reason := applyErr
		if ctx.Err() != nil {
			reason = fmt.Errorf("interrupted: %w", applyErr)
			applyErr = reason
		}
		fmt.Fprintf(s.Out, "%s failed: %v\nRestoring every service it touched to its previous spec:\n", titleCase(string(c.Action)), reason)
		restoreErr = s.restore(applied)
	}

	// 6. Record and tell.
	rec.Nodes = s.nodesStarted(applied, managerStart)
	out := decide(applyErr, applied.Changed(), panicked, restoreErr)
	rec.Result, rec.Duration = out.Result, time.Since(start)
	if applyErr != nil {
		rec.Reason = applyErr.Error()
	}
	switch out.Result {
	case ledger.Succeeded:
		fmt.Fprintf(s.Out, "%s of %s converged in %s.\n", titleCase(string(c.Action)), s.Env.Name, rec.Duration.Round(100*time.Millisecond))
	case ledger.RolledBack:
		fmt.Fprintln(s.Out, "Restored: every touched service runs its previous spec again.")
	case ledger.Failed:
		s.printState(applied)
	}
	events.Send(eventOf(out.Event, rec))
	if out.Result != ledger.Succeeded {
		undo()
	}
	return s.record(history, rec, out.withError(c.Action, applyErr, restoreErr))
}

// lockForPreflight takes the lock for a real change whose checks so far
// passed, reads it for a dry run (a real run would stop there), and says
// why it was not taken otherwise. The returned func releases it, even after
// a second Ctrl-C.
func (s *Session) lockForPreflight(ctx context.Context, c Change, cs *Checks) func() {
	lock := ledger.Lock{API: s.API, Stack: s.Env.Stack}
	switch {
	case c.DryRun:
		switch held, err := lock.Read(ctx); {
		case err != nil:
			cs.Add("lock", "", err)
		case held != nil:
			cs.Add("lock", "", fmt.Errorf("%s; a real run would stop here", held))
		default:
			cs.Add("lock", "free", nil)
		}
	case cs.Failed():
		cs.NotRun("lock", "not taken: a check above failed")
	default:
		unlock, err := s.holdLock(ctx, string(c.Action)+" to "+s.Env.Name)
		if err != nil {
			cs.Add("lock", "", quorumError(err, "", 0))
			return func() {}
		}
		cs.Add("lock", "taken", nil)
		return unlock
	}
	return func() {}
}

// checkTarget is what every change checks of what it installs: names,
// collisions, external networks, nodes against placement, and the smoke
// check's service.
func (s *Session) checkTarget(ctx context.Context, d *Desired, live *Live, cs *Checks) {
	checkNames(d, cs)
	checkCollisions(ctx, s.API, d, live, cs)
	checkNetworks(d, live, cs)
	checkNodes(ctx, s.API, d.Services, cs)
	s.checkSmoke(d, cs)
}

// newRecord starts the record of a change.
func (s *Session) newRecord(c Change, t *Target, start time.Time) ledger.Record {
	rec := ledger.Record{
		Env: s.Env.Name, Stack: s.Env.Stack, Action: c.Action, Version: t.Release.Tag, Digest: t.Release.Digest,
		GitSHA: s.Git.SHA, Who: s.Who, Started: start.UTC(), Target: t.RollbackTo, Override: c.Override,
		Services: records(t.Desired),
	}
	if s.EnvFile != nil {
		rec.EnvFile, rec.EnvFileSHA256 = s.EnvFile.Path, s.EnvFile.SHA256
	}
	if t.Release.Repository == "" {
		rec.Version, rec.Digest = appRelease(t.Desired, s.Env.Image)
	}
	return rec
}

// nodesStarted are the hostnames of the nodes on which the services a
// changed got tasks since the change began (by the manager's clock).
func (s *Session) nodesStarted(a *Applied, since time.Time) []string {
	ctx, cancel := s.cleanup()
	defer cancel()
	ns, err := s.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil
	}
	names := map[string]string{}
	for _, n := range ns.Items {
		names[n.ID] = n.Description.Hostname
	}
	seen := map[string]bool{}
	for _, name := range a.Names() {
		id := a.IDs[name]
		if id == "" {
			continue
		}
		ts, err := s.API.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", id)})
		if err != nil {
			continue
		}
		for _, t := range ts.Items {
			if t.NodeID != "" && !t.CreatedAt.Before(since) {
				seen[cmpOr(names[t.NodeID], short(t.NodeID, 12))] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// errPanic marks a change that panicked half-way: what it changed cannot
// be trusted to be all in its Applied, so it ends as broken.
var errPanic = errors.New("internal error")

// applySafely applies the plan, turning a panic into an error: a bug must
// not leave the stack half-changed without a restore and a record.
func (s *Session) applySafely(ctx context.Context, plan *Plan, live *Live, applied *Applied, migrate bool, want string, rec *ledger.Record) (err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "panic: %v\n%s", p, debug.Stack())
			err, panicked = fmt.Errorf("%w: panic: %v", errPanic, p), true
		}
	}()
	return s.apply(ctx, plan, live, applied, migrate, want, rec), false
}

// holdLock takes the environment's lock for a change (the pipeline's, or
// secrets:prune's, db:migrate's), waiting up to LockWait for its holder;
// the returned func releases it, even after a second Ctrl-C.
func (s *Session) holdLock(ctx context.Context, action string) (func(), error) {
	lock := ledger.Lock{API: s.API, Stack: s.Env.Stack}
	info := ledger.LockInfo{Holder: s.Who, Since: time.Now(), Action: action, PID: os.Getpid()}
	giveUp := time.Now().Add(s.LockWait)
	for waiting := false; ; waiting = true {
		release, err := lock.Acquire(ctx, info)
		if err == nil {
			return func() {
				ctx, cancel := s.cleanup()
				defer cancel()
				if err := release(ctx); err != nil {
					fmt.Fprintln(s.Out, "warning:", err)
				}
			}, nil
		}
		if !errors.Is(err, ledger.ErrLocked) || !time.Now().Before(giveUp) {
			return nil, Refused(err)
		}
		if !waiting {
			fmt.Fprintf(s.Out, "Waiting up to %s for the lock: %v\n", s.LockWait, err)
		}
		select {
		case <-ctx.Done():
			return nil, Refused(err)
		case <-time.After(min(lockPoll, time.Until(giveUp))):
		}
	}
}

// lockPoll is how often a change waiting for the lock asks again.
var lockPoll = 5 * time.Second

// cleanup bounds the work every exit path owes (releasing the lock,
// writing the record): it outlives even a second Ctrl-C, briefly.
func (s *Session) cleanup() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(s.bg()), 30*time.Second)
}

// record writes rec and ends the change as out says. A record that cannot
// be written is reported with the change's own exit code (mage reads the
// code without unwrapping); a change that converged stays a success.
func (s *Session) record(h ledger.History, rec ledger.Record, out outcome) error {
	ctx, cancel := s.cleanup()
	defer cancel()
	err := h.Write(ctx, rec)
	if errors.Is(err, ledger.ErrPrune) {
		fmt.Fprintln(s.Out, "warning:", err)
		err = nil
	}
	if err == nil {
		fmt.Fprintf(s.Out, "Recorded as #%d (%s).\n", rec.Seq, rec.Result)
		return out.Err
	}
	if out.Err == nil {
		fmt.Fprintf(s.Out, "warning: the change converged, but its record could not be written (%v): deploy:history will not list it, and deploy:rollback judges what runs from the services themselves\n", err)
		return nil
	}
	return &ExitError{Code: out.Code, Err: errors.Join(out.Err, fmt.Errorf("and its record could not be written: %w", err))}
}

// notifier starts the change's notifications: nil (sending nothing) when
// the environment names no webhook, or its variable is unset.
func (s *Session) notifier() *notify.Notifier {
	if s.Env.Notify == nil {
		return nil
	}
	if !s.Webhook.IsSet() {
		fmt.Fprintf(s.Out, "warning: notify: %s is not set: this change sends no notification\n", s.Env.Notify.URLEnv)
		return nil
	}
	return notify.NewNotifier(s.Webhook, s.Env.Notify.Timeout, s.Out)
}

// eventOf makes an event from a change's record.
func eventOf(kind notify.Kind, r ledger.Record) notify.Event {
	e := notify.Event{Event: kind, Environment: r.Env, Stack: r.Stack, Action: string(r.Action), Seq: r.Seq, Release: r.Version,
		Digest: r.Digest, Who: r.Who, Started: r.Started, Result: string(r.Result), Reason: ledger.BoundReason(r.Reason), Override: r.Override}
	if kind != notify.Start {
		e.Duration = r.Duration.Seconds()
	}
	return e
}
