package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Options say where a release is made.
type Options struct {
	Dir    string              // the working tree; "." when empty
	Branch string              // the release branch; "main" when empty
	Getenv func(string) string // CI hints for a detached HEAD (see gitinfo); nil: none
}

// Plan is a release ready to be applied.
type Plan struct {
	Version *semver.Version
	Tag     string // "v" + Version
	Cmds    []runner.Cmd
}

// NextStep is what the person releasing runs after Apply: the tag is only
// local until it is pushed, which is what starts the release build.
func (p Plan) NextStep() string { return "git push origin " + p.Tag }

// Choose picks the version of a release from the repository's tags.
type Choose func(tags []string) (*semver.Version, error)

// Final chooses the next release with Next.
func Final(b Bump) Choose {
	return func(tags []string) (*semver.Version, error) { return Next(tags, b) }
}

// Pre chooses the next pre-release with NextPre.
func Pre(id string, b *Bump) Choose {
	return func(tags []string) (*semver.Version, error) { return NextPre(tags, id, b) }
}

// Check refuses a release from a tree whose state is not what the tag would
// say: uncommitted changes, a branch other than the release branch (a
// detached HEAD included), or a commit that is already released. An empty
// branch means "main".
func Check(f gitinfo.Facts, branch string) error {
	if branch == "" {
		branch = "main"
	}
	if f.Dirty() {
		shown := f.Changes[:min(5, len(f.Changes))]
		more := ""
		if n := len(f.Changes) - len(shown); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		return fmt.Errorf("working tree has uncommitted changes (%s%s): commit or stash them first", strings.Join(shown, ", "), more)
	}
	if f.Branch == "" {
		return fmt.Errorf("HEAD is detached: releases are made from branch %q", branch)
	}
	if f.Branch != branch {
		return fmt.Errorf("HEAD is on branch %q: releases are made from branch %q", f.Branch, branch)
	}
	// Only a final release blocks: promoting a tested release candidate to
	// the release on the same commit is the normal path.
	for _, v := range versions(f.TagsAtHead) {
		if v.Prerelease() == "" {
			return fmt.Errorf("HEAD is already released as v%s", v.Original())
		}
	}
	return nil
}

// Prepare reads the working tree, checks it with Check and plans an
// annotated tag of the version choose picks. The tag names HEAD's commit id
// rather than HEAD, so a commit made between planning and applying is not
// released unchecked.
func Prepare(ctx context.Context, o Options, choose Choose) (Plan, error) {
	dir := o.Dir
	if dir == "" {
		dir = "."
	}
	f, err := gitinfo.Read(ctx, dir, o.Getenv)
	if err != nil {
		return Plan{}, err
	}
	// The version first: a mistyped argument is reported before the state
	// of the tree, which takes longer to fix.
	v, err := choose(f.Tags)
	if err != nil {
		return Plan{}, fmt.Errorf("cannot release: %w", err)
	}
	if err := Check(f, o.Branch); err != nil {
		return Plan{}, fmt.Errorf("cannot release: %w", err)
	}
	tag := "v" + v.String()
	return Plan{
		Version: v,
		Tag:     tag,
		Cmds:    []runner.Cmd{runner.Command("git", "tag", "-a", tag, "-m", "Release "+tag, f.SHA).InDir(o.Dir)},
	}, nil
}

// Apply creates the planned tag.
func Apply(ctx context.Context, r runner.Runner, p Plan) error {
	if err := runner.RunAll(ctx, r, p.Cmds); err != nil {
		return fmt.Errorf("tag %s: %w", p.Tag, err)
	}
	return nil
}

// Candidate is what one release command would create.
type Candidate struct {
	Command string          // e.g. "go tool mage release:minor"
	Version *semver.Version // nil when Err is set
	Err     error
}

// Preview lists what each release command would create from these tags.
func Preview(tags []string) []Candidate {
	var cs []Candidate
	for _, b := range []Bump{Patch, Minor, Major} {
		v, err := Next(tags, b)
		cs = append(cs, Candidate{"go tool mage release:" + b.String(), v, err})
	}
	v, err := NextPre(tags, "rc", nil)
	return append(cs, Candidate{"go tool mage release:pre rc", v, err})
}
