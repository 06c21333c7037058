// Package imagetag computes the tags an image build is pushed under, from the
// git facts of the build. It is pure: the caller reads git and pushes.
//
// The scheme (deployment standard):
//
//	{sha7}        every build
//	{branch}      builds on a branch, sanitized to a valid Docker tag;
//	              branch-{branch} when it looks like a version, a sha or latest
//	latest        builds of the main branch; never used by a production deploy
//	vX.Y.Z, vX.Y  a semver release tag at HEAD; vX.Y only moves forward,
//	              pre-releases get only their own tag
//
// A dirty tree gets only {sha7}-dirty, so an image of uncommitted code can
// never be pushed under a name that a deploy would pick up.
package imagetag

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/fractionate/service-template/magefiles/release"
)

// Input is what the tags of a build depend on.
type Input struct {
	SHA        string   // commit id of HEAD, at least 7 hex characters
	Branch     string   // branch being built; empty for a detached HEAD
	Dirty      bool     // uncommitted changes in the build context
	TagsAtHead []string // git tags pointing at HEAD
	Tags       []string // all git tags, to decide whether vX.Y may move
	MainBranch string   // the branch that gets latest; "main" when empty
}

// maxLen is the longest tag Docker accepts.
const maxLen = 128

var (
	hexRE = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	// Names this scheme gives to other things: a branch sanitized into one of
	// these gets a prefix, so pushing it can never overwrite a release or a
	// commit's image. Version-shaped means any name that starts like one (v
	// or V, or nothing, then a digit: v1.2.3.4, v1.2.3foo, v1.2.3_hotfix,
	// 1.2, v2-beta), which takes in everything release.ParseTag or a loose
	// reading (semver.NewVersion, a person) would take for a version: a
	// branch image under such a name would pass for a release even where it
	// overwrites nothing. No release tag starts with "branch-", so prefixed
	// names cannot collide with one either.
	versionish = regexp.MustCompile(`^[vV]?[0-9]`)
	shaish     = regexp.MustCompile(`^[0-9a-fA-F]{7,40}(-dirty)?$`)
)

// BranchPrefix starts the tag of a branch whose name looks like a tag the
// scheme gives to something else.
const BranchPrefix = "branch-"

// Compute returns the tags for a build in a stable order (sha, branch,
// latest, then release tags highest first, each vX.Y.Z before its vX.Y),
// with warnings for git tags and branches it had to ignore. The error is only
// for an unusable SHA.
func Compute(in Input) (tags []string, warnings []string, err error) {
	if len(in.SHA) < 7 || len(in.SHA) > 64 || !hexRE.MatchString(in.SHA) {
		return nil, nil, fmt.Errorf("commit id %q: want 7 to 64 hex characters", in.SHA)
	}
	short := strings.ToLower(in.SHA[:7])

	if in.Dirty {
		tag := short + "-dirty"
		return []string{tag}, []string{fmt.Sprintf("working tree has uncommitted changes: tagged %s only, no branch, latest or release tags", tag)}, nil
	}

	tags = []string{short}
	if in.Branch != "" {
		name := Sanitize(in.Branch)
		switch {
		case name == "":
			warnings = append(warnings, fmt.Sprintf("branch %q has no character allowed in an image tag: no branch tag", in.Branch))
		case reserved(name):
			tags = append(tags, truncate(BranchPrefix+name))
		default:
			tags = append(tags, name)
		}
		main := in.MainBranch
		if main == "" {
			main = "main"
		}
		if in.Branch == main {
			tags = append(tags, "latest")
		}
	}

	releases, w := releaseTags(in.TagsAtHead, in.Tags)
	warnings = append(warnings, w...)
	tags = append(tags, releases...)
	return dedupe(tags), warnings, nil
}

// Sanitize turns a branch name into a valid Docker tag,
// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}: every other character becomes "-",
// leading "." and "-" are dropped and the result is cut to 128 characters.
// Case is kept, as Docker tags allow upper case. It may return "".
func Sanitize(branch string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, branch)
	return truncate(strings.TrimLeft(s, ".-"))
}

func truncate(s string) string {
	if len(s) > maxLen {
		return s[:maxLen] // only ASCII is left, so bytes are characters
	}
	return s
}

func reserved(name string) bool {
	return name == "latest" || versionish.MatchString(name) || shaish.MatchString(name)
}

// releaseTags gives the tags for the release tags at HEAD, highest first.
func releaseTags(atHead, all []string) (tags, warnings []string) {
	var versions []*semver.Version
	for _, t := range atHead {
		v, ok := release.ParseTag(t)
		switch {
		case !ok:
			warnings = append(warnings, fmt.Sprintf("ignoring tag %q at HEAD: not a release tag (v + semantic version, like v1.2.3)", t))
		case v.Metadata() != "":
			warnings = append(warnings, fmt.Sprintf("ignoring tag %q at HEAD: build metadata (+...) cannot be part of an image tag", t))
		case len(t) > maxLen:
			warnings = append(warnings, fmt.Sprintf("ignoring tag %q at HEAD: longer than the %d characters of an image tag", t, maxLen))
		default:
			versions = append(versions, v)
		}
	}
	slices.SortFunc(versions, func(a, b *semver.Version) int { return b.Compare(a) })

	// The newest final release of each major.minor decides whether vX.Y moves.
	newest := map[string]*semver.Version{}
	for _, t := range slices.Concat(atHead, all) {
		if v, ok := release.ParseTag(t); ok && v.Prerelease() == "" {
			if n := newest[minor(v)]; n == nil || v.GreaterThan(n) {
				newest[minor(v)] = v
			}
		}
	}
	for _, v := range versions {
		tags = append(tags, "v"+v.String())
		if v.Prerelease() == "" && !newest[minor(v)].GreaterThan(v) {
			tags = append(tags, minor(v))
		}
	}
	return tags, warnings
}

func minor(v *semver.Version) string { return fmt.Sprintf("v%d.%d", v.Major(), v.Minor()) }

func dedupe(tags []string) []string {
	seen := map[string]bool{}
	out := tags[:0]
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
