package imagetag_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/imagetag"
	"github.com/fractionate/service-template/magefiles/release"
)

const sha = "abc1234def5678abc1234def5678abc1234def56"

func TestCompute(t *testing.T) {
	long := strings.Repeat("a-", 100) // 200 characters
	tests := []struct {
		name     string
		in       imagetag.Input
		want     []string
		warnings []string // substrings, one per expected warning
	}{
		{
			name: "feature branch",
			in:   imagetag.Input{SHA: sha, Branch: "feature/x"},
			want: []string{"abc1234", "feature-x"},
		},
		{
			name: "main branch gets latest",
			in:   imagetag.Input{SHA: sha, Branch: "main"},
			want: []string{"abc1234", "main", "latest"},
		},
		{
			name: "configured main branch gets latest, main does not",
			in:   imagetag.Input{SHA: sha, Branch: "main", MainBranch: "trunk"},
			want: []string{"abc1234", "main"},
		},
		{
			name: "configured main branch",
			in:   imagetag.Input{SHA: sha, Branch: "trunk", MainBranch: "trunk"},
			want: []string{"abc1234", "trunk", "latest"},
		},
		{
			name: "upper case is kept",
			in:   imagetag.Input{SHA: sha, Branch: "Feature/UPPER"},
			want: []string{"abc1234", "Feature-UPPER"},
		},
		{
			name: "dependabot branch",
			in:   imagetag.Input{SHA: sha, Branch: "dependabot/go_modules/golang.org/x/net-0.1"},
			want: []string{"abc1234", "dependabot-go_modules-golang.org-x-net-0.1"},
		},
		{
			name: "200-character branch is cut to 128",
			in:   imagetag.Input{SHA: sha, Branch: long},
			want: []string{"abc1234", long[:128]},
		},
		{
			name: "leading dots and dashes are dropped",
			in:   imagetag.Input{SHA: sha, Branch: "-.-/fix"},
			want: []string{"abc1234", "fix"},
		},
		{
			name: "non-ASCII characters become one dash each",
			in:   imagetag.Input{SHA: sha, Branch: "fix-ünï"},
			want: []string{"abc1234", "fix--n-"},
		},
		{
			name:     "branch with no usable character is skipped",
			in:       imagetag.Input{SHA: sha, Branch: "//"},
			want:     []string{"abc1234"},
			warnings: []string{`branch "//"`},
		},
		{
			name: "branch named latest is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "latest"},
			want: []string{"abc1234", "branch-latest"},
		},
		{
			name: "branch named like a release is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v1.2.3"},
			want: []string{"abc1234", "branch-v1.2.3"},
		},
		{
			name: "branch named like a minor tag is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v1.2"},
			want: []string{"abc1234", "branch-v1.2"},
		},
		{
			name: "branch named like a pre-release is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v1.3.0-rc.1"},
			want: []string{"abc1234", "branch-v1.3.0-rc.1"},
		},
		{
			name: "branch with a fourth version number is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v1.2.3.4"},
			want: []string{"abc1234", "branch-v1.2.3.4"},
		},
		{
			name: "branch with letters after a version is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v1.2.3foo"},
			want: []string{"abc1234", "branch-v1.2.3foo"},
		},
		{
			name: "branch with an underscore after a version is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v1.2.3_hotfix"},
			want: []string{"abc1234", "branch-v1.2.3_hotfix"},
		},
		{
			name: "branch named like an upper-case version is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "V2.0.0"},
			want: []string{"abc1234", "branch-V2.0.0"},
		},
		{
			name: "branch named like a major version is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "v2-migration"},
			want: []string{"abc1234", "branch-v2-migration"},
		},
		{
			name: "branch starting with a number is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "123-fix-login"},
			want: []string{"abc1234", "branch-123-fix-login"},
		},
		{
			name: "branch named like a word starting with v is not prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "vendor-update"},
			want: []string{"abc1234", "vendor-update"},
		},
		{
			name: "branch that only contains a version is not prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "release/v1.3.0-rc.1"},
			want: []string{"abc1234", "release-v1.3.0-rc.1"},
		},
		{
			name: "branch sanitized into a version shape is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "/1.2.3"},
			want: []string{"abc1234", "branch-1.2.3"},
		},
		{
			name: "branch named like a short sha is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "abcdef1"},
			want: []string{"abc1234", "branch-abcdef1"},
		},
		{
			name: "branch named like a full sha is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: strings.Repeat("f", 40)},
			want: []string{"abc1234", "branch-" + strings.Repeat("f", 40)},
		},
		{
			name: "branch named like a dirty tag is prefixed",
			in:   imagetag.Input{SHA: sha, Branch: "abcdef1-dirty"},
			want: []string{"abc1234", "branch-abcdef1-dirty"},
		},
		{
			name: "short hex branch is not a sha",
			in:   imagetag.Input{SHA: sha, Branch: "cafe"},
			want: []string{"abc1234", "cafe"},
		},
		{
			name: "prefixed long branch stays within 128",
			in:   imagetag.Input{SHA: sha, Branch: "v1.2.3-" + long},
			want: []string{"abc1234", ("branch-v1.2.3-" + long)[:128]},
		},
		{
			name: "detached HEAD has no branch tag and no latest",
			in:   imagetag.Input{SHA: sha},
			want: []string{"abc1234"},
		},
		{
			name: "CI detached HEAD on a release tag",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.3"}, Tags: []string{"v1.2.2", "v1.2.3"}},
			want: []string{"abc1234", "v1.2.3", "v1.2"},
		},
		{
			name: "release tag on main",
			in:   imagetag.Input{SHA: sha, Branch: "main", TagsAtHead: []string{"v1.2.3"}, Tags: []string{"v1.2.3"}},
			want: []string{"abc1234", "main", "latest", "v1.2.3", "v1.2"},
		},
		{
			name: "TagsAtHead count even when missing from Tags",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.3"}},
			want: []string{"abc1234", "v1.2.3", "v1.2"},
		},
		{
			name: "pre-release gets only its own tag",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.3.0-rc.1"}, Tags: []string{"v1.2.0", "v1.3.0-rc.1"}},
			want: []string{"abc1234", "v1.3.0-rc.1"},
		},
		{
			name: "pre-release on main: latest comes from the branch, no vX.Y",
			in:   imagetag.Input{SHA: sha, Branch: "main", TagsAtHead: []string{"v1.3.0-rc.1"}, Tags: []string{"v1.3.0-rc.1"}},
			want: []string{"abc1234", "main", "latest", "v1.3.0-rc.1"},
		},
		{
			name: "hotfix after a newer minor moves its own minor only",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.9"}, Tags: []string{"v1.2.8", "v1.2.9", "v1.3.0"}},
			want: []string{"abc1234", "v1.2.9", "v1.2"},
		},
		{
			name: "rebuild of an older patch does not move vX.Y",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.9"}, Tags: []string{"v1.2.9", "v1.2.10"}},
			want: []string{"abc1234", "v1.2.9"},
		},
		{
			name: "a newer pre-release does not hold vX.Y back",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.9"}, Tags: []string{"v1.2.9", "v1.2.10-rc.1"}},
			want: []string{"abc1234", "v1.2.9", "v1.2"},
		},
		{
			name: "junk tags do not hold vX.Y back",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.9"}, Tags: []string{"v1.2.9", "v1.2.99.1", "v01.2.10"}},
			want: []string{"abc1234", "v1.2.9", "v1.2"},
		},
		{
			name: "two release tags on one commit, highest first",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.9.0", "v2.0.0"}, Tags: []string{"v1.9.0", "v2.0.0"}},
			want: []string{"abc1234", "v2.0.0", "v2.0", "v1.9.0", "v1.9"},
		},
		{
			name: "final release and its release candidate on one commit",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.3.0-rc.2", "v1.3.0"}, Tags: []string{"v1.3.0-rc.2", "v1.3.0"}},
			want: []string{"abc1234", "v1.3.0", "v1.3", "v1.3.0-rc.2"},
		},
		{
			name: "two patches of one minor on one commit move vX.Y once",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.3", "v1.2.4"}, Tags: []string{"v1.2.3", "v1.2.4"}},
			want: []string{"abc1234", "v1.2.4", "v1.2", "v1.2.3"},
		},
		{
			name: "non-release tags at HEAD are ignored with a warning each",
			in:   imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2", "release-5", "v01.2.3", "1.2.3", "v1.2.3"}},
			want: []string{"abc1234", "v1.2.3", "v1.2"},
			warnings: []string{
				`"v1.2"`, `"release-5"`, `"v01.2.3"`, `"1.2.3"`,
			},
		},
		{
			name:     "build metadata cannot be an image tag",
			in:       imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.3+build.7"}},
			want:     []string{"abc1234"},
			warnings: []string{`"v1.2.3+build.7"`},
		},
		{
			name:     "release tag too long for an image tag",
			in:       imagetag.Input{SHA: sha, TagsAtHead: []string{"v1.2.3-" + strings.Repeat("x", 130)}},
			want:     []string{"abc1234"},
			warnings: []string{"longer than"},
		},
		{
			name:     "dirty tree gets only sha-dirty",
			in:       imagetag.Input{SHA: sha, Branch: "main", Dirty: true, TagsAtHead: []string{"v1.2.3"}, Tags: []string{"v1.2.3"}},
			want:     []string{"abc1234-dirty"},
			warnings: []string{"uncommitted changes"},
		},
		{
			name: "upper-case sha is lowered",
			in:   imagetag.Input{SHA: strings.ToUpper(sha)},
			want: []string{"abc1234"},
		},
		{
			name: "seven-character sha is enough",
			in:   imagetag.Input{SHA: "abc1234"},
			want: []string{"abc1234"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := imagetag.Compute(tt.in)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("tags = %q\nwant   %q", got, tt.want)
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %d containing %q", warnings, len(tt.warnings), tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
			for _, tag := range got {
				if !validTag(tag) {
					t.Errorf("%q is not a valid Docker tag", tag)
				}
			}
		})
	}
}

func TestComputeRejectsUnusableSHA(t *testing.T) {
	for _, s := range []string{"", "abc123", "abc123g", "not-a-sha", strings.Repeat("a", 65)} {
		t.Run(s, func(t *testing.T) {
			tags, _, err := imagetag.Compute(imagetag.Input{SHA: s, Branch: "main"})
			if err == nil {
				t.Fatalf("Compute(SHA %q) = %q, want an error", s, tags)
			}
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not name the SHA", err)
			}
		})
	}
}

// validTag is Docker's rule, written independently of the package.
func validTag(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' ||
			i > 0 && (r == '.' || r == '-')
		if !ok {
			return false
		}
	}
	return true
}

// hostileBranches are branch names chosen to pass for something the scheme
// tags otherwise: releases, minors, pre-releases, loose versions, shas,
// latest.
var hostileBranches = []string{
	"v1.2.3", "v1.2", "v1", "v1.3.0-rc.1", "v1.2.3.4", "v1.2.3foo", "v1.2.3_hotfix", "v1.2.3-", "v1.2.3+build",
	"V1.2.3", "1.2.3", "1.2", "01.2.3", "v01.2.3", "/v1.2.3", "-v1.2.3", ".v1.2.3", "..1.2.3", "v1.2.3/x",
	"v9999999999999999999.0.0", "abc1234", "abc1234-dirty", "ABC1234", "latest", "main", "feature/x",
}

// A branch's tags never include one that release.ParseTag takes for a
// release, one shaped like a commit's, or latest (off main); and the build
// reports the commit, never a version.
func TestBranchTagsNeverPassForReleases(t *testing.T) {
	for _, b := range hostileBranches {
		t.Run(b, func(t *testing.T) { checkBranch(t, b) })
	}
}

func FuzzBranchTags(f *testing.F) {
	for _, b := range hostileBranches {
		f.Add(b)
	}
	f.Fuzz(checkBranch)
}

func checkBranch(t *testing.T, branch string) {
	tags, _, err := imagetag.Compute(imagetag.Input{SHA: sha, Branch: branch})
	if err != nil {
		t.Fatal(err)
	}
	if tags[0] != sha[:7] {
		t.Fatalf("tags = %q, want the commit's first", tags)
	}
	for _, tag := range tags[1:] {
		if _, ok := release.ParseTag(tag); ok {
			t.Errorf("branch %q: tag %q passes for a release", branch, tag)
		}
		if tag == "latest" && branch != "main" {
			t.Errorf("branch %q: tag latest", branch)
		}
		if !strings.HasPrefix(tag, imagetag.BranchPrefix) && tag != "latest" &&
			(len(tag) > 0 && (tag[0] >= '0' && tag[0] <= '9' || (tag[0] == 'v' || tag[0] == 'V') && len(tag) > 1 && tag[1] >= '0' && tag[1] <= '9')) {
			t.Errorf("branch %q: tag %q starts like a version", branch, tag)
		}
		if h := strings.TrimSuffix(tag, "-dirty"); len(h) >= 7 && len(h) <= 40 && hexOnly(h) {
			t.Errorf("branch %q: tag %q looks like a commit's", branch, tag)
		}
		if !validTag(tag) {
			t.Errorf("branch %q: %q is not a valid Docker tag", branch, tag)
		}
	}
	if v := dockerimage.VersionFromTags(tags); v != sha[:7] {
		t.Errorf("branch %q: the build reports version %q, want the commit %s", branch, v, sha[:7])
	}
}

func hexOnly(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return s != ""
}
