// Package release computes the next semantic version from git tags and plans
// the annotated tag that makes a release.
//
// Versions are tags of the form "v" + strict semver; other tags are ignored.
// The pure functions (Next, NextPre, Check) decide; Prepare reads a working
// tree and returns a Plan; Apply runs it. Pushing the tag is left to the
// person releasing, so nothing leaves the machine by surprise.
package release

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Bump says which part of the version a release increments.
type Bump int

// The bumps, smallest first.
const (
	Patch Bump = iota
	Minor
	Major
)

func (b Bump) String() string {
	switch b {
	case Patch:
		return "patch"
	case Minor:
		return "minor"
	case Major:
		return "major"
	}
	return fmt.Sprintf("Bump(%d)", int(b))
}

// ParseBump reads "patch", "minor" or "major", in any case.
func ParseBump(s string) (Bump, error) {
	for _, b := range []Bump{Patch, Minor, Major} {
		if strings.EqualFold(s, b.String()) {
			return b, nil
		}
	}
	return 0, fmt.Errorf("bump %q: want patch, minor or major", s)
}

func (b Bump) apply(v *semver.Version) (*semver.Version, error) {
	var n semver.Version
	switch b {
	case Patch:
		n = v.IncPatch()
	case Minor:
		n = v.IncMinor()
	case Major:
		n = v.IncMajor()
	default:
		return nil, fmt.Errorf("unknown bump %v", b)
	}
	return &n, nil
}

// Next is the release after the highest final version: v1.2.3 gives v1.2.4,
// v1.3.0 or v2.0.0. A pre-release of that version (v1.3.0-rc.2) is thereby
// finalized. With no release yet the base is v0.0.0.
func Next(tags []string, bump Bump) (*semver.Version, error) {
	vs := versions(tags)
	v, err := bump.apply(base(vs))
	if err != nil {
		return nil, err
	}
	return v, unused(v, vs)
}

// idRE is one semver pre-release identifier; purely numeric ones are refused
// separately because the number is what NextPre appends.
var idRE = regexp.MustCompile(`^[0-9A-Za-z-]+$`)

// NextPre is the next pre-release id.N (v1.3.0-rc.1, rc.2, ...). Its core
// version is the base bumped when bump is given; otherwise the core of a
// pre-release newer than the base, so a release candidate continues; and
// otherwise the base with its patch bumped. N is one more than the highest
// existing N of that core and id.
func NextPre(tags []string, id string, bump *Bump) (*semver.Version, error) {
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("pre-release id %q: want one identifier of letters, digits and '-' (like rc, beta, alpha-1)", id)
	}
	if strings.Trim(id, "0123456789") == "" {
		return nil, fmt.Errorf("pre-release id %q: must not be only digits, the number is added after it (rc.1)", id)
	}

	vs := versions(tags)
	b := base(vs)
	var core *semver.Version
	switch top := highest(vs); {
	case bump != nil:
		v, err := bump.apply(b)
		if err != nil {
			return nil, err
		}
		core = v
	case top != nil && top.Prerelease() != "" && top.GreaterThan(b):
		core = coreOf(top)
	default:
		v := b.IncPatch()
		core = &v
	}

	var n uint64
	for _, v := range vs {
		if coreOf(v).Equal(core) {
			if rest, ok := strings.CutPrefix(v.Prerelease(), id+"."); ok {
				if k, err := strconv.ParseUint(rest, 10, 64); err == nil && k > n {
					n = k
				}
			}
		}
	}
	v, err := core.SetPrerelease(fmt.Sprintf("%s.%d", id, n+1))
	if err != nil {
		return nil, fmt.Errorf("pre-release id %q: %w", id, err)
	}
	// A pre-release must sort after every earlier one of its version: beta
	// after rc would go backwards.
	for _, o := range vs {
		if coreOf(o).Equal(core) && o.Prerelease() != "" && !v.GreaterThan(o) {
			return nil, fmt.Errorf("v%s would sort before the existing v%s; start a new version with a bump", v, o)
		}
	}
	return &v, unused(&v, vs)
}

// ParseTag reads a release tag: "v" followed by a strict semantic version
// (v1.2.3, v1.3.0-rc.1). Anything else (v1.2, 1.2.3, v01.2.3) is not one.
// The image tag scheme uses the same rule, so the two never disagree.
func ParseTag(tag string) (*semver.Version, bool) {
	rest, ok := strings.CutPrefix(tag, "v")
	if !ok {
		return nil, false
	}
	v, err := semver.StrictNewVersion(rest)
	return v, err == nil
}

// IsReleaseTag reports whether tag names a release an environment may run:
// a release tag (ParseTag) without build metadata (v1.2.3+dirty is a
// build, not a release). The one rule for it: images, stacks and deploys
// all ask here.
func IsReleaseTag(tag string) bool {
	v, ok := ParseTag(tag)
	return ok && v.Metadata() == ""
}

// versions parses the tags that are release tags.
func versions(tags []string) []*semver.Version {
	var vs []*semver.Version
	for _, t := range tags {
		if v, ok := ParseTag(t); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// base is the highest final (non-pre-release) version, v0.0.0 without one.
func base(vs []*semver.Version) *semver.Version {
	b := semver.New(0, 0, 0, "", "")
	for _, v := range vs {
		if v.Prerelease() == "" && v.GreaterThan(b) {
			b = v
		}
	}
	return b
}

func highest(vs []*semver.Version) *semver.Version {
	var h *semver.Version
	for _, v := range vs {
		if h == nil || v.GreaterThan(h) {
			h = v
		}
	}
	return h
}

func coreOf(v *semver.Version) *semver.Version {
	return semver.New(v.Major(), v.Minor(), v.Patch(), "", "")
}

// unused refuses a version that a tag already has (build metadata aside).
func unused(v *semver.Version, vs []*semver.Version) error {
	for _, o := range vs {
		if v.Equal(o) {
			return fmt.Errorf("v%s already exists as tag v%s", v, o.Original())
		}
	}
	return nil
}
