// Package deploy puts releases on a Docker Swarm and takes them back.
//
// Every change (deploy, rollback, scale, secret rotation) runs the same
// pipeline:
//
//  1. preflight: every check runs and prints one line; any failure stops
//     the change before anything is touched (exit 1); secrets are bound to
//     their newest versions here;
//  2. plan: the desired services, computed with the docker CLI's own stack
//     loader and converter and pinned to image digests, diffed against the
//     live stack; for a deploy, the release's pending migrations, asked of
//     the database by a job; -dryrun stops here;
//  3. apply through the Engine API, under a lock held in the Swarm: the
//     dependencies, then the release's migrations (a deploy only, once, as
//     a job; a failure stops the change before the release's services
//     change), then the release's services; a change that fails before
//     any service changed exits 1, with nothing to restore;
//  4. converge: wait until every touched service runs this change's spec,
//     healthy, and Swarm reports this change's update completed; fail on a
//     rollback, a pause, failing tasks or the deadline; then the
//     environment's smoke check (/ready 200, /version the release);
//  5. on failure (or Ctrl-C), restore every touched service to the spec it
//     had before, whole stack, and wait for that (exit 2; 3 when the
//     restore does not converge);
//  6. record the change in the Swarm itself.
//
// A change that gets past preflight with something to do sends webhook
// events (start, then success, rollback or failure) without waiting for
// them beyond a short timeout.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/release"
	"github.com/fractionate/service-template/magefiles/stack"
)

// Exit codes the deploy targets end with, for CI to branch on.
const (
	ExitDeployed = 0 // the change converged
	ExitRefused  = 1 // refused before any change: preflight, lock, bad input
	ExitRestored = 2 // failed; every touched service is back on its previous spec
	ExitBroken   = 3 // failed, and the restore did not converge either
)

// ExitError is an error with the exit code mage should end with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string   { return e.Err.Error() }
func (e *ExitError) Unwrap() error   { return e.Err }
func (e *ExitError) ExitStatus() int { return e.Code }

// Refused wraps err as a refusal (exit 1).
func Refused(err error) error { return &ExitError{Code: ExitRefused, Err: err} }

// Git is what a deploy knows of the working tree.
type Git struct {
	SHA        string
	Changes    []string // uncommitted changes: a protected deploy refuses them
	TagsAtHead []string
}

// Deployer changes one environment.
type Deployer struct {
	Env      *Environment
	Envs     Environments
	API      client.APIClient
	Endpoint string // for messages
	Registry Resolver
	Auth     AuthFunc
	Git      Git
	Who      string // user@host, or the CI run
	Out      io.Writer
	// Lookup reads ${NAME} in the environments file's variables.
	Lookup func(string) (string, bool)
	// Promotion opens a client for the environment a protected one
	// promotes from; the closer releases it.
	Promotion func(env *Environment) (client.APIClient, func(), error)
	// Background is the context restores and records run in: it outlives
	// a first Ctrl-C (which cancels the change's own context) and ends on
	// a second. context.Background() when nil.
	Background context.Context
	// Poll is the convergence poll interval; 500ms when zero.
	Poll time.Duration
	// Webhook is the URL the environment's notify.url_env names, read from
	// the process environment: unset means no notifications.
	Webhook secret.Value
	// LockWait is how long a change waits for a held lock before it is
	// refused (DEPLOY_LOCK_WAIT; 0, refuse at once): CI sets it so that two
	// pipelines meeting on one environment queue instead of failing.
	LockWait time.Duration
}

func (d *Deployer) bg() context.Context {
	if d.Background != nil {
		return d.Background
	}
	return context.Background()
}

// DeployOptions choose what a deploy installs.
type DeployOptions struct {
	Image    string // a reference in the environment's repository: tag, digest or both
	Version  string // a tag of the environment's repository
	Default  string // the tag when neither is given (HEAD's image)
	DryRun   bool
	Override string // reason to skip the protected-environment checks; recorded
}

// Deploy installs a release.
func (d *Deployer) Deploy(ctx context.Context, o DeployOptions) error {
	start := time.Now()
	fmt.Fprintf(d.Out, "Deploying to %s (stack %s) through %s\n", d.Env.Name, d.Env.Stack, d.Endpoint)
	var cs Checks
	if !checkManager(ctx, d.API, d.Endpoint, &cs) {
		cs.Print(d.Out)
		return Refused(cs.Err())
	}
	release, err := d.chooseRelease(ctx, o, &cs)
	if err != nil {
		cs.Print(d.Out)
		return Refused(err)
	}
	if d.Env.Protected {
		d.protectedChecks(ctx, release, o.Override, &cs)
	}
	return d.run(ctx, start, &cs, "deploy", o.DryRun, o.Override, func(live *Live, cs *Checks) (*Desired, Release, int, error) {
		st, err := LoadStack(d.Env, release, d.Lookup)
		if err != nil {
			cs.Add("stack", "", err)
			return nil, release, 0, nil
		}
		for _, w := range st.Warnings {
			fmt.Fprintln(d.Out, "warning:", w)
		}
		d.checkRules(ctx, st, cs)
		d.checkImages(ctx, st, release, cs)
		if !st.bindSecrets(VersionsOf(d.Env.Stack, slices.Collect(maps.Values(live.Secrets))), live, cs) || cs.Failed() {
			return nil, release, 0, nil
		}
		desired, err := st.Convert(ctx, d.API)
		if err != nil {
			cs.Add("convert", "", err)
			return nil, release, 0, nil
		}
		if err := d.pin(ctx, desired); err != nil {
			cs.Add("images", "", err)
			return nil, release, 0, nil
		}
		return desired, release, 0, nil
	})
}

// chooseRelease resolves what to deploy to a digest in the registry.
func (d *Deployer) chooseRelease(ctx context.Context, o DeployOptions, cs *Checks) (Release, error) {
	rel := Release{Repository: d.Env.Image}
	from := "HEAD's image"
	switch {
	case o.Image != "" && o.Version != "":
		return rel, errors.New("give -image or -version, not both")
	case o.Image != "":
		named, err := reference.ParseNormalizedNamed(o.Image)
		if err != nil {
			return rel, fmt.Errorf("-image %q: %w", o.Image, err)
		}
		if named.Name() != d.Env.Image {
			return rel, fmt.Errorf("-image %q is not in environment %s's repository %s", o.Image, d.Env.Name, d.Env.Image)
		}
		if t, ok := named.(reference.Tagged); ok {
			rel.Tag = t.Tag()
		}
		if dg, ok := named.(reference.Digested); ok {
			rel.Digest = dg.Digest().String()
		}
		from = "-image"
	case o.Version != "":
		rel.Tag, from = o.Version, "-version"
		if _, err := reference.ParseNormalizedNamed(d.Env.Image + ":" + o.Version); err != nil {
			return rel, fmt.Errorf("-version %q is not an image tag: %w", o.Version, err)
		}
	default:
		rel.Tag = o.Default
	}
	if rel.Tag == "" && rel.Digest == "" {
		return rel, errors.New("nothing to deploy: give -image or -version")
	}
	ref := rel.Ref()
	digest, err := d.Registry.Digest(ctx, ref)
	if err != nil {
		hint := ""
		if errors.Is(err, ErrNotInRegistry) {
			hint = "; push it first (go tool mage image:push" + map[bool]string{true: ", or deploy:to local, which builds and pushes", false: ""}[d.Env.Registry != nil] + ")"
		}
		cs.Add("release", "", fmt.Errorf("%s (%s): %w%s", ref, from, err, hint))
		return rel, cs.Err()
	}
	rel.Digest = digest
	if rel.Tag == "" {
		// Deployed by digest: show the version the build stamped.
		if v, err := d.Registry.Version(ctx, ref); err == nil && v != "" {
			if _, perr := reference.ParseNormalizedNamed(rel.Repository + ":" + v); perr == nil {
				rel.Tag = v
			}
		}
	}
	cs.Add("release", fmt.Sprintf("%s (%s)", rel.Ref(), from), nil)
	return rel, nil
}

// protectedChecks are the rules of a protected environment: a clean tree
// at a release tag, that release's image, and bytes that ran on the
// environment it promotes from.
func (d *Deployer) protectedChecks(ctx context.Context, rel Release, override string, cs *Checks) {
	if override != "" {
		cs.Add("protected", "checks overridden: "+override+" (recorded in the history)", nil)
		return
	}
	if len(d.Git.Changes) > 0 {
		cs.Add("tree", "", fmt.Errorf("%d uncommitted change(s) (%s): a protected environment is deployed from a clean tree; commit or stash them", len(d.Git.Changes), strings.Join(first(d.Git.Changes, 5), ", ")))
	} else {
		cs.Add("tree", "clean", nil)
	}
	var headTag string
	for _, t := range d.Git.TagsAtHead {
		if v, ok := release.ParseTag(t); ok && v.Metadata() == "" {
			headTag = t
		}
	}
	switch {
	case headTag == "":
		cs.Add("tag", "", errors.New("HEAD carries no release tag (vX.Y.Z): tag it with go tool mage release:patch (or minor, major) and push the tag"))
	case rel.Tag != headTag:
		cs.Add("tag", "", fmt.Errorf("HEAD is %s but the image is tagged %q: deploy the release HEAD carries", headTag, rel.Tag))
	default:
		cs.Add("tag", "HEAD is "+headTag, nil)
	}
	if v, ok := release.ParseTag(rel.Tag); !ok || v.Metadata() != "" {
		cs.Add("image", "", fmt.Errorf("tag %q is not a release tag (vX.Y.Z): a protected environment never runs latest, a branch, a commit or a -dirty image", rel.Tag))
	} else if headTag != "" {
		// The release tag must name these very bytes.
		dg, err := d.Registry.Digest(ctx, rel.Repository+":"+rel.Tag)
		switch {
		case err != nil:
			cs.Add("image", "", fmt.Errorf("%s:%s: %w", rel.Repository, rel.Tag, err))
		case dg != rel.Digest:
			cs.Add("image", "", fmt.Errorf("%s:%s is %s in the registry, not the %s being deployed", rel.Repository, rel.Tag, dg, rel.Digest))
		default:
			cs.Add("image", "release tag "+rel.Tag, nil)
		}
	}
	d.checkPromoted(ctx, rel, cs)
}

// checkPromoted requires the digest to have run successfully on the
// environment this one promotes from.
func (d *Deployer) checkPromoted(ctx context.Context, rel Release, cs *Checks) {
	src, err := d.Envs.Get(d.Env.PromoteFrom)
	if err != nil {
		cs.Add("promoted", "", err)
		return
	}
	if d.Promotion == nil {
		cs.Add("promoted", "", errors.New("no way to read the history of "+src.Name))
		return
	}
	api, closer, err := d.Promotion(src)
	if err != nil {
		cs.Add("promoted", "", fmt.Errorf("reach %s to read its history: %w", src.Name, err))
		return
	}
	defer closer()
	records, err := History{API: api, Stack: src.Stack}.List(ctx)
	if err != nil {
		cs.Add("promoted", "", err)
		return
	}
	for _, r := range records {
		if r.Result == Succeeded && r.Digest == rel.Digest {
			cs.Add("promoted", fmt.Sprintf("ran on %s in deploy #%d (%s)", src.Name, r.Seq, r.Started.Local().Format(time.DateTime)), nil)
			return
		}
	}
	cs.Add("promoted", "", fmt.Errorf("%s never ran successfully on %s: deploy it there first (the same digest is promoted, never rebuilt)", shortDigest(rel.Digest), src.Name))
}

// checkRules holds a protected environment's stack to the production rules.
func (d *Deployer) checkRules(ctx context.Context, st *Stack, cs *Checks) {
	if !d.Env.Protected {
		cs.Add("stack", fmt.Sprintf("%d file(s) load: %d services", len(d.Env.Files), len(st.Config.Services)), nil)
		return
	}
	p, err := stack.Load(ctx, d.Env.Stack, st.Variables, d.Env.Files...)
	if err == nil {
		err = stack.CheckProduction(p, d.Env.Image)
	}
	if err != nil {
		cs.Add("stack", "", fmt.Errorf("the production rules: %w", err))
		return
	}
	cs.Add("stack", fmt.Sprintf("%d file(s) load and keep the production rules", len(d.Env.Files)), nil)
}

// checkImages checks that every image other than the release resolves in
// its registry.
func (d *Deployer) checkImages(ctx context.Context, st *Stack, rel Release, cs *Checks) {
	var errs []string
	n := 0
	for _, s := range st.Config.Services {
		if ParseImage(s.Image).Repository == rel.Repository {
			continue
		}
		n++
		if _, err := d.Registry.Digest(ctx, s.Image); err != nil {
			errs = append(errs, fmt.Sprintf("service %s: %v", s.Name, err))
		}
	}
	if len(errs) > 0 {
		cs.Add("images", "", errors.New(strings.Join(errs, "; ")))
		return
	}
	cs.Add("images", fmt.Sprintf("%d other image(s) resolve to digests", n), nil)
}

// pin rewrites every service's image to repository:tag@digest.
func (d *Deployer) pin(ctx context.Context, desired *Desired) error {
	for name, spec := range desired.Services {
		img := spec.TaskTemplate.ContainerSpec.Image
		dg, err := d.Registry.Digest(ctx, img)
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		parsed := ParseImage(img)
		ref := parsed.Repository
		if parsed.Tag != "" {
			ref += ":" + parsed.Tag
		}
		cs := *spec.TaskTemplate.ContainerSpec
		cs.Image = ref + "@" + dg
		spec.TaskTemplate.ContainerSpec = &cs
		desired.Services[name] = spec
	}
	return nil
}

// build computes the desired state once the live state is known. It adds
// its own checks; a nil Desired means they failed.
type build func(live *Live, cs *Checks) (*Desired, Release, int, error)

// run is the pipeline every change shares.
func (d *Deployer) run(ctx context.Context, start time.Time, cs *Checks, action string, dryRun bool, override string, b build) error {
	var notify *Notifier
	// Deferred before the lock's release, so it runs after it: a slow
	// webhook holds the process for its timeout, never the lock.
	defer func() { notify.Close() }()
	if dryRun {
		if held, _, err := (Lock{API: d.API, Stack: d.Env.Stack}).Read(ctx); err != nil {
			cs.Add("lock", "", err)
		} else if held != nil {
			cs.Add("lock", "", fmt.Errorf("%s; a real run would stop here", held))
		} else {
			cs.Add("lock", "free", nil)
		}
	} else if unlock, err := d.holdLock(ctx, action+" to "+d.Env.Name); err != nil {
		cs.Add("lock", "", err)
	} else {
		defer unlock()
		cs.Add("lock", "taken", nil)
	}
	live, err := ReadLive(ctx, d.API, d.Env.Stack)
	if err != nil {
		cs.Print(d.Out)
		return Refused(err)
	}
	desired, rel, target, err := b(live, cs)
	if err == nil && desired != nil && !cs.Failed() {
		checkNodes(ctx, d.API, desired.Services, cs)
		d.checkSmoke(desired, cs)
	}
	cs.Print(d.Out)
	if err != nil {
		return Refused(err)
	}
	if cs.Failed() || desired == nil {
		return Refused(fmt.Errorf("preflight refused the %s; nothing was changed:\n%w", action, cs.Err()))
	}
	plan := MakePlan(d.Env.Name, rel, desired, live)
	if action == "deploy" {
		// Rollbacks never migrate: only a deploy asks.
		plan.Migrations = d.askMigrations(ctx, plan)
	}
	plan.Print(d.Out)
	if dryRun {
		fmt.Fprintln(d.Out, "Dry run: nothing was changed.")
		return nil
	}
	rec := Record{
		Env: d.Env.Name, Stack: d.Env.Stack, Action: action, Version: rel.Tag, Digest: rel.Digest,
		GitSHA: d.Git.SHA, Who: d.Who, Started: start.UTC(), Target: target, Override: override,
		Services: records(desired),
	}
	if rel.Repository == "" {
		rec.Version, rec.Digest = appRelease(desired, d.Env.Image)
	}
	history := History{API: d.API, Stack: d.Env.Stack, Keep: d.Env.History}
	seq, err := history.Next(ctx)
	if err != nil {
		return Refused(err)
	}
	rec.Seq = seq
	if plan.Empty() {
		fmt.Fprintln(d.Out, "Nothing to change: the stack already runs this.")
		rec.Result, rec.Reason, rec.Duration = Succeeded, "nothing to change", time.Since(start)
		return d.record(history, rec, nil)
	}
	notify = d.notifier()
	notify.Send(eventOf(EventStart, rec))

	fmt.Fprintln(d.Out, "Applying:")
	applied := NewApplied()
	err = d.apply(ctx, plan, live, applied, action == "deploy", d.expectedVersion(ctx, desired, rec.Version))
	if err != nil && len(applied.Kept) == 0 {
		// A failed migration, say: no service changed, so nothing to restore.
		rec.Result, rec.Reason, rec.Duration = NotApplied, err.Error(), time.Since(start)
		notify.Send(eventOf(EventFailure, rec))
		return d.record(history, rec, Refused(fmt.Errorf("%s stopped before any service changed: %w", action, err)))
	}
	if err == nil {
		rec.Result, rec.Duration = Succeeded, time.Since(start)
		fmt.Fprintf(d.Out, "%s to %s converged in %s.\n", titleCase(action), d.Env.Name, rec.Duration.Round(100*time.Millisecond))
		notify.Send(eventOf(EventSuccess, rec))
		return d.record(history, rec, nil)
	}

	// Failed, or interrupted: put back every service this change touched.
	reason := err
	if ctx.Err() != nil {
		reason = fmt.Errorf("interrupted: %w", err)
	}
	fmt.Fprintf(d.Out, "%s failed: %v\nRestoring every service it touched to its previous spec:\n", titleCase(action), reason)
	restoreErr := Restore(d.bg(), d.API, d.Env.Stack, applied, func(ctx context.Context) (map[string]string, error) {
		l, err := ReadLive(ctx, d.API, d.Env.Stack)
		if err != nil {
			return nil, err
		}
		return l.NetworkNames, nil
	}, d.Auth, ConvergeOptions{Deadline: d.Env.Deadline, Poll: d.Poll, Out: d.Out})
	rec.Duration, rec.Reason = time.Since(start), reason.Error()
	if restoreErr != nil {
		rec.Result = Failed
		d.printState(d.bg(), applied)
		notify.Send(eventOf(EventFailure, rec))
		return d.record(history, rec, &ExitError{Code: ExitBroken, Err: fmt.Errorf("%s failed (%w) and the restore did not converge: %w", action, reason, restoreErr)})
	}
	rec.Result = RolledBack
	fmt.Fprintln(d.Out, "Restored: every touched service runs its previous spec again.")
	notify.Send(eventOf(EventRollback, rec))
	return d.record(history, rec, &ExitError{Code: ExitRestored, Err: fmt.Errorf("%s failed and was rolled back: %w", action, reason)})
}

// notifier starts the change's notifications: nil (sending nothing) when
// the environment names no webhook, or its variable is unset.
func (d *Deployer) notifier() *Notifier {
	if d.Env.Notify == nil {
		return nil
	}
	if !d.Webhook.IsSet() {
		fmt.Fprintf(d.Out, "warning: notify: %s is not set: this change sends no notification\n", d.Env.Notify.URLEnv)
		return nil
	}
	return NewNotifier(d.Webhook, d.Env.Notify.Timeout, d.Out)
}

// migrationError is a failed migration job: the deploy stops there.
type migrationError struct{ err error }

func (e *migrationError) Error() string { return "migrations failed: " + e.err.Error() }
func (e *migrationError) Unwrap() error { return e.err }

// apply makes the plan's changes in the order a release needs: networks
// and configs; then the services that do not run the release's image (the
// database, say), converged; then the release's migrations, once, as a
// job; then the services that run the release, converged. On an error,
// applied holds everything changed so far.
func (d *Deployer) apply(ctx context.Context, plan *Plan, live *Live, applied *Applied, migrate bool, want string) error {
	if err := ApplyObjects(ctx, d.API, plan, d.Out); err != nil {
		return err
	}
	deps, app := splitByImage(plan.Touched(), d.Env.Image)
	co := ConvergeOptions{Deadline: d.Env.Deadline, Poll: d.Poll, Out: d.Out}
	phase := func(changes []ServiceChange) error {
		if len(changes) == 0 {
			return nil
		}
		if err := ApplyServices(ctx, d.API, plan.Stack, changes, live, d.Auth, applied, d.Out); err != nil {
			return err
		}
		fmt.Fprintf(d.Out, "Waiting for %d service(s) to converge (deadline %s):\n", len(applied.Watches), d.Env.Deadline)
		return Converge(ctx, d.API, applied.Watches, co)
	}
	if err := phase(deps); err != nil {
		return err
	}
	if base, ok := migrationBase(app, d.Env.Image); ok && migrate {
		if m := plan.Migrations; m != nil && m.Asked && len(m.Pending) == 0 {
			// Asked under the lock a moment ago: nothing can have added one.
			fmt.Fprintln(d.Out, "Migrations: none pending")
		} else {
			fmt.Fprintf(d.Out, "Migrations: running %s once, as a job on the stack's network\n", "app migrate up")
			start := time.Now()
			out, err := RunJob(ctx, d.bg(), d.API, base, JobOptions{
				Name: plan.Stack + "_migrate", Stack: plan.Stack, Args: []string{"migrate", "up"}, Deadline: d.Env.Deadline, Out: d.Out, Auth: d.Auth, Poll: d.Poll,
			})
			if err != nil {
				// The migration's own error, for the record and the
				// notification: the job's is only its exit code.
				if last := strings.TrimPrefix(lastLine(out), ": "); last != "" {
					err = fmt.Errorf("%s (%w)", last, err)
				}
				return &migrationError{err}
			}
			fmt.Fprintf(d.Out, "Migrations: done in %s\n", time.Since(start).Round(100*time.Millisecond))
		}
	}
	if err := phase(app); err != nil {
		return err
	}
	if d.Env.Smoke == nil {
		return nil
	}
	specs := map[string]swarm.ServiceSpec{}
	for _, c := range plan.Services {
		if c.New != nil {
			specs[c.Name] = *c.New
		}
	}
	if why := nothingToSmoke(d.Env.Smoke, specs, d.Env.Image); why != "" {
		fmt.Fprintf(d.Out, "Smoke check skipped: %s.\n", why)
		return nil
	}
	return d.smokeCheck(ctx, specs, want)
}

// expectedVersion is what the release's /version must report: the version
// the build stamped into the image (its org.opencontainers.image.version
// label), which is also what the service reports; the tag when the
// registry cannot say.
func (d *Deployer) expectedVersion(ctx context.Context, desired *Desired, tag string) string {
	if d.Env.Smoke == nil {
		return tag
	}
	if _, dg := appRelease(desired, d.Env.Image); dg != "" {
		if v, err := d.Registry.Version(ctx, d.Env.Image+"@"+dg); err == nil && v != "" {
			return v
		}
	}
	return tag
}

// splitByImage parts changes into those of services that do not run the
// release's repository (the database, say) and those that do.
func splitByImage(changes []ServiceChange, repo string) (deps, app []ServiceChange) {
	for _, c := range changes {
		if runsImage(c, repo) {
			app = append(app, c)
		} else {
			deps = append(deps, c)
		}
	}
	return deps, app
}

// lockPoll is how often a change waiting for the lock asks again.
var lockPoll = 5 * time.Second

// acquire takes the lock, waiting up to d.LockWait for its holder to let go.
func (d *Deployer) acquire(ctx context.Context, lock Lock, info LockInfo) (func(context.Context) error, error) {
	giveUp := time.Now().Add(d.LockWait)
	for waiting := false; ; waiting = true {
		release, err := lock.Acquire(ctx, info)
		if !errors.Is(err, ErrLocked) || !time.Now().Before(giveUp) {
			return release, err
		}
		if !waiting {
			fmt.Fprintf(d.Out, "Waiting up to %s for the lock: %v\n", d.LockWait, err)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(min(lockPoll, time.Until(giveUp))):
		}
	}
}

// holdLock takes the environment's lock for a change (the pipeline's, or
// secrets:prune's, db:migrate's); the returned func releases it, even after
// a second Ctrl-C.
func (d *Deployer) holdLock(ctx context.Context, action string) (func(), error) {
	release, err := d.acquire(ctx, Lock{API: d.API, Stack: d.Env.Stack}, LockInfo{Holder: d.Who, Since: time.Now(), Action: action, PID: os.Getpid()})
	if err != nil {
		return nil, Refused(err)
	}
	return func() {
		ctx, cancel := d.cleanup()
		defer cancel()
		if err := release(ctx); err != nil {
			fmt.Fprintln(d.Out, "warning:", err)
		}
	}, nil
}

// runsImage reports whether a change concerns a service of the release's
// repository, before or after.
func runsImage(c ServiceChange, repo string) bool {
	for _, s := range []*swarm.ServiceSpec{c.Old, c.New} {
		if s != nil && ImageOf(*s).Repository == repo {
			return true
		}
	}
	return false
}

// migrationBase is the spec the migration job copies: the first created or
// updated service that runs a new image of the release's repository. None
// when the release's image does not change.
func migrationBase(changes []ServiceChange, repo string) (swarm.ServiceSpec, bool) {
	for _, c := range changes {
		if c.New == nil || ImageOf(*c.New).Repository != repo {
			continue
		}
		if c.Old == nil || ImageOf(*c.Old).Digest != ImageOf(*c.New).Digest {
			return *c.New, true
		}
	}
	return swarm.ServiceSpec{}, false
}

// record writes rec; a failure to write is reported along with result,
// whose exit code it keeps (mage reads the code without unwrapping).
func (d *Deployer) record(h History, rec Record, result error) error {
	ctx, cancel := d.cleanup()
	defer cancel()
	err := h.Write(ctx, rec)
	if errors.Is(err, errPrune) {
		fmt.Fprintln(d.Out, "warning:", err)
		err = nil
	}
	if err == nil {
		fmt.Fprintf(d.Out, "Recorded as #%d (%s).\n", rec.Seq, rec.Result)
		return result
	}
	if result == nil {
		return &ExitError{Code: ExitBroken, Err: fmt.Errorf("the change converged but could not be recorded: %w", err)}
	}
	return &ExitError{Code: exitCode(result), Err: errors.Join(result, err)}
}

// exitCode is the code err carries: ExitRefused when it carries none.
func exitCode(err error) int {
	if ee, ok := errors.AsType[*ExitError](err); ok {
		return ee.Code
	}
	return ExitRefused
}

// cleanup bounds the work every exit path owes (releasing the lock,
// writing the record): it outlives even a second Ctrl-C, briefly.
func (d *Deployer) cleanup() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(d.bg()), 30*time.Second)
}

// printState says where each touched service stands after a failed restore.
func (d *Deployer) printState(ctx context.Context, a *Applied) {
	fmt.Fprintln(d.Out, "State of the services this change touched:")
	for _, name := range a.Names() {
		obs, err := Observe(ctx, d.API, d.Env.Stack+"_"+name)
		if err != nil {
			fmt.Fprintf(d.Out, "  %s: %v\n", name, err)
			continue
		}
		if obs.Gone {
			fmt.Fprintf(d.Out, "  %s: does not exist\n", name)
			continue
		}
		p := Evaluate(Watch{Name: name, Restore: true}, obs)
		fmt.Fprintf(d.Out, "  %s, image %s\n", p.Line, ImageOf(obs.Service.Spec).Short())
	}
}

func records(d *Desired) map[string]ServiceRecord {
	out := map[string]ServiceRecord{}
	for name, spec := range d.Services {
		r := ServiceRecord{Image: spec.TaskTemplate.ContainerSpec.Image, Spec: spec}
		if spec.Mode.Replicated != nil {
			r.Replicas = spec.Mode.Replicated.Replicas
		}
		out[name] = r
	}
	return out
}

// appRelease is the version and digest of the first service running the
// environment's image.
func appRelease(d *Desired, repo string) (string, string) {
	for _, name := range slices.Sorted(maps.Keys(d.Services)) {
		img := ImageOf(d.Services[name])
		if img.Repository == repo {
			return img.Tag, img.Digest
		}
	}
	return "", ""
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), "...")
	}
	return s
}

func titleCase(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// specsOf turns recorded services back into a desired state.
func specsOf(stack string, services map[string]ServiceRecord) *Desired {
	d := &Desired{Stack: stack, Services: map[string]swarm.ServiceSpec{}}
	for name, s := range services {
		d.Services[name] = s.Spec
	}
	return d
}
