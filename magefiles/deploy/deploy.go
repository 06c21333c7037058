package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/release"
	"github.com/fractionate/service-template/magefiles/stack"
)

// DeployOptions choose what a deploy installs.
type DeployOptions struct {
	Image    string // a reference in the environment's repository: tag, digest or both
	Version  string // a tag of the environment's repository
	DryRun   bool
	Override string // reason to skip the protected-environment checks; recorded
}

// Deploy installs a release: the one -image or -version names, else
// HEAD's image (built and pushed first where the environment has a local
// registry, unless this is a dry run).
func (s *Session) Deploy(ctx context.Context, o DeployOptions) error {
	rel := Release{Repository: s.Env.Image}
	from, flagErr := parseRelease(s.Env, o, &rel)
	if flagErr == nil && o.Image == "" && o.Version == "" {
		if s.Head == nil {
			flagErr = errors.New("nothing to deploy: give -image or -version")
		} else if tag, err := s.Head(ctx, s.Env.Registry != nil && !o.DryRun); err != nil {
			return Refused(fmt.Errorf("HEAD's image: %w", err))
		} else {
			rel.Tag = tag
		}
	}
	what := "release " + cmpOr(rel.Ref(), "?") + " (" + from + ")"
	c := Change{Action: ledger.Deploy, What: what, DryRun: o.DryRun, Override: o.Override}
	c.Offline = func(cs *Checks) {
		if flagErr != nil {
			cs.Add("release", "", flagErr)
		}
		if s.Env.Protected {
			s.protectedOffline(rel, o.Override, cs)
		}
		s.checkStackFiles(cs)
	}
	c.Registry = func(ctx context.Context, cs *Checks) {
		if flagErr != nil {
			cs.NotRun("images", "needs the release")
			return
		}
		if !s.resolveRelease(ctx, &rel, from, cs) {
			if s.Env.Protected && o.Override == "" {
				cs.NotRun("promoted", "needs the release's digest")
			}
			return
		}
		if s.Env.Protected && o.Override == "" {
			s.checkReleaseTag(ctx, rel, cs)
			s.checkPromoted(ctx, rel, cs)
		}
		s.checkSignature(ctx, rel, o.Override, cs)
		s.checkImages(ctx, rel, cs)
	}
	c.Prepare = func(ctx context.Context, live *Live, cs *Checks) *Target {
		if cs.Failed() {
			cs.NotRun("secrets", "needs the checks above")
			return nil
		}
		st, err := loadStack(s.Env, rel, s.Lookup)
		if err != nil {
			cs.Add("stack", "", err)
			return nil
		}
		if !st.bindSecrets(versionsOf(s.Env.Stack, slices.Collect(maps.Values(live.Secrets))), live, cs) {
			return nil
		}
		desired, err := st.Convert(ctx, s.API)
		if err != nil {
			cs.Add("convert", "", err)
			return nil
		}
		if err := s.pin(ctx, desired); err != nil {
			cs.Add("images", "", err)
			return nil
		}
		return &Target{Desired: desired, Release: rel}
	}
	return s.Run(ctx, c)
}

// parseRelease reads -image and -version into rel; it says where the
// release comes from, for people.
func parseRelease(env *envfile.Environment, o DeployOptions, rel *Release) (string, error) {
	switch {
	case o.Image != "" && o.Version != "":
		return "-image and -version", errors.New("give -image or -version, not both")
	case o.Image != "":
		named, err := reference.ParseNormalizedNamed(o.Image)
		if err != nil {
			return "-image", fmt.Errorf("-image %q: %w", o.Image, err)
		}
		// rel is what was given, even in a wrong repository: the header
		// names it and a protected environment's checks judge its tag.
		rel.Repository = named.Name()
		if t, ok := named.(reference.Tagged); ok {
			rel.Tag = t.Tag()
		}
		if dg, ok := named.(reference.Digested); ok {
			rel.Digest = dg.Digest().String()
		}
		if named.Name() != env.Image {
			return "-image", fmt.Errorf("-image %q is not in environment %s's repository %s", o.Image, env.Name, env.Image)
		}
		return "-image", nil
	case o.Version != "":
		rel.Tag = o.Version
		if _, err := reference.ParseNormalizedNamed(env.Image + ":" + o.Version); err != nil {
			return "-version", fmt.Errorf("-version %q is not an image tag: %w", o.Version, err)
		}
		return "-version", nil
	}
	return "HEAD's image", nil
}

// resolveRelease resolves the release to a digest in the registry.
func (s *Session) resolveRelease(ctx context.Context, rel *Release, from string, cs *Checks) bool {
	ref := rel.Ref()
	digest, err := s.Registry.Digest(ctx, ref)
	if err != nil {
		hint := ""
		if errors.Is(err, errNotInRegistry) {
			switch {
			case s.Env.Protected:
				hint = "; a protected environment runs a release CI built and pushed: check the version"
			case s.Env.Registry != nil:
				hint = "; push it first (deploy:to " + s.Env.Name + " without -image or -version builds and pushes HEAD)"
			default:
				hint = "; push it first (go tool mage image:push)"
			}
		}
		cs.Add("release", "", fmt.Errorf("%s (%s): %w%s", ref, from, err, hint))
		return false
	}
	rel.Digest = digest
	if rel.Tag == "" {
		// Deployed by digest: show the version the build stamped.
		if v, err := s.Registry.Version(ctx, ref); err == nil && v != "" {
			if _, perr := reference.ParseNormalizedNamed(rel.Repository + ":" + v); perr == nil {
				rel.Tag = v
			}
		}
	}
	cs.Add("release", fmt.Sprintf("%s (%s)", rel.Ref(), from), nil)
	return true
}

// protectedOffline are the rules of a protected environment that need no
// engine or registry: a clean tree at a release tag, and that release.
func (s *Session) protectedOffline(rel Release, override string, cs *Checks) {
	if override != "" {
		cs.Add("protected", "checks overridden: "+override+" (recorded in the history)", nil)
		return
	}
	switch {
	case s.Git.Err != nil:
		cs.Add("tree", "", fmt.Errorf("git cannot tell the tree's state (%w): a protected environment is deployed from a clean checkout", s.Git.Err))
	case len(s.Git.Changes) > 0:
		cs.Add("tree", "", fmt.Errorf("%d uncommitted change(s) (%s): a protected environment is deployed from a clean tree; commit or stash them", len(s.Git.Changes), strings.Join(first(s.Git.Changes, 5), ", ")))
	default:
		cs.Add("tree", "clean", nil)
	}
	var headTag string
	for _, t := range s.Git.TagsAtHead {
		if release.IsReleaseTag(t) {
			headTag = t
		}
	}
	switch {
	case headTag == "":
		cs.Add("tag", "", errors.New("HEAD carries no release tag (vX.Y.Z): tag it with go tool mage release:patch (or minor, major) and push the tag"))
	case rel.Tag != "" && rel.Tag != headTag:
		cs.Add("tag", "", fmt.Errorf("HEAD is %s but the image is tagged %q: deploy the release HEAD carries", headTag, rel.Tag))
	default:
		cs.Add("tag", "HEAD is "+headTag, nil)
	}
	if rel.Tag == "" || !release.IsReleaseTag(rel.Tag) {
		cs.Add("image", "", fmt.Errorf("tag %q is not a release tag (vX.Y.Z): a protected environment never runs latest, a branch, a commit or a -dirty image", rel.Tag))
	}
}

// checkReleaseTag requires the release tag to name the very bytes being
// deployed.
func (s *Session) checkReleaseTag(ctx context.Context, rel Release, cs *Checks) {
	if !release.IsReleaseTag(rel.Tag) {
		return // refused offline
	}
	dg, err := s.Registry.Digest(ctx, rel.Repository+":"+rel.Tag)
	switch {
	case err != nil:
		cs.Add("image", "", fmt.Errorf("%s:%s: %w", rel.Repository, rel.Tag, err))
	case dg != rel.Digest:
		cs.Add("image", "", fmt.Errorf("%s:%s is %s in the registry, not the %s being deployed", rel.Repository, rel.Tag, dg, rel.Digest))
	default:
		cs.Add("image", "release tag "+rel.Tag, nil)
	}
}

// checkPromoted requires the digest to have served on the environment
// this one promotes from.
func (s *Session) checkPromoted(ctx context.Context, rel Release, cs *Checks) {
	src, err := s.Envs.Get(s.Env.PromoteFrom)
	if err != nil {
		cs.Add("promoted", "", err)
		return
	}
	if s.Promotion == nil {
		cs.Add("promoted", "", errors.New("no way to read the history of "+src.Name))
		return
	}
	api, closer, err := s.Promotion(src)
	if err != nil {
		cs.Add("promoted", "", fmt.Errorf("reach %s to read its history: %w", src.Name, err))
		return
	}
	defer closer()
	records, err := ledger.History{API: api, Stack: src.Stack}.List(ctx)
	if err != nil {
		cs.Add("promoted", "", fmt.Errorf("%s: %w", src.Name, err))
		return
	}
	if r, ok := served(records, rel.Digest, src.Smoke != nil); ok {
		cs.Add("promoted", fmt.Sprintf("served on %s in change #%d (%s)", src.Name, r.Seq, r.Started.Local().Format(time.DateTime)), nil)
		return
	}
	cs.Add("promoted", "", fmt.Errorf("%s never served on %s (a change that converged with it running, replicas above 0, and its smoke check passed): deploy it there first; the same digest is promoted, never rebuilt", shortDigest(rel.Digest), src.Name))
}

// checkSignature requires, where the environment names a key, a signature
// by it over the release's digest that binds the SBOM attached to it.
// -override skips it only where the environment allows that.
func (s *Session) checkSignature(ctx context.Context, rel Release, override string, cs *Checks) {
	v := s.Env.Verify
	switch {
	case v == nil:
		return
	case override != "" && v.AllowOverride:
		cs.Add("signature", "not checked: -override, which verify.allow_override allows (recorded)", nil)
		return
	}
	r, err := s.Registry.Verify(ctx, rel.Repository+"@"+rel.Digest, v.Key)
	if err != nil {
		hint := "; sign it: go tool mage image:sign " + rel.Repository + "@" + rel.Digest + " (with COSIGN_PRIVATE_KEY)"
		if override != "" {
			hint += "; -override does not skip this check here (verify.allow_override is off)"
		}
		cs.Add("signature", "", fmt.Errorf("%w%s", err, hint))
		return
	}
	cs.Add("signature", fmt.Sprintf("signed by %s, SBOM %s bound", r.Key, shortDigest(r.SBOM.Document.String())), nil)
}

// served finds the newest record showing digest served: a change that
// converged with a service running it at more than 0 replicas and, where
// the environment has a smoke check, that check passed.
func served(records []ledger.Record, digest string, smoke bool) (ledger.Record, bool) {
	for _, r := range records {
		if r.Result != ledger.Succeeded || (smoke && r.Smoke != ledger.SmokePassed) {
			continue
		}
		for _, svc := range r.Services {
			if ParseImage(svc.Image).Digest != digest {
				continue
			}
			if m := svc.Spec.Mode; m.Global != nil || (m.Replicated != nil && (m.Replicated.Replicas == nil || *m.Replicated.Replicas > 0)) {
				return r, true
			}
		}
	}
	return ledger.Record{}, false
}

// checkStackFiles loads the stack files, with a stand-in release, and
// holds a protected environment's to the production rules.
func (s *Session) checkStackFiles(cs *Checks) {
	st, err := loadStack(s.Env, Release{Repository: s.Env.Image, Tag: "v0.0.0"}, s.Lookup)
	if err != nil {
		cs.Add("stack", "", err)
		return
	}
	for _, w := range st.Warnings {
		fmt.Fprintln(s.Out, "warning:", w)
	}
	if !s.Env.Protected {
		cs.Add("stack", fmt.Sprintf("%d file(s) load: %d services", len(s.Env.Files), len(st.Config.Services)), nil)
		return
	}
	p, err := stack.Load(context.Background(), s.Env.Stack, st.Variables, s.Env.Files...)
	if err == nil {
		err = stack.CheckProduction(p, s.Env.Image)
	}
	if err != nil {
		cs.Add("stack", "", fmt.Errorf("the production rules: %w", err))
		return
	}
	cs.Add("stack", fmt.Sprintf("%d file(s) load and keep the production rules", len(s.Env.Files)), nil)
}

// checkImages checks that every image other than the release resolves in
// its registry.
func (s *Session) checkImages(ctx context.Context, rel Release, cs *Checks) {
	st, err := loadStack(s.Env, rel, s.Lookup)
	if err != nil {
		cs.NotRun("images", "needs the stack files")
		return
	}
	var errs []string
	n := 0
	for _, svc := range st.Config.Services {
		if ParseImage(svc.Image).Repository == rel.Repository {
			continue
		}
		n++
		if _, err := s.Registry.Digest(ctx, svc.Image); err != nil {
			errs = append(errs, fmt.Sprintf("service %s: %v", svc.Name, err))
		}
	}
	if len(errs) > 0 {
		cs.Add("images", "", errors.New(strings.Join(errs, "; ")))
		return
	}
	cs.Add("images", fmt.Sprintf("%d other image(s) resolve to digests", n), nil)
}

// pin rewrites every service's image to repository:tag@digest.
func (s *Session) pin(ctx context.Context, desired *Desired) error {
	for name, spec := range desired.Services {
		img := spec.TaskTemplate.ContainerSpec.Image
		dg, err := s.Registry.Digest(ctx, img)
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
