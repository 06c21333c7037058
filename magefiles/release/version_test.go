package release_test

import (
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/release"
)

func bumpp(b release.Bump) *release.Bump { return &b }

func TestParseBump(t *testing.T) {
	tests := []struct {
		in      string
		want    release.Bump
		wantErr bool
	}{
		{"patch", release.Patch, false},
		{"minor", release.Minor, false},
		{"major", release.Major, false},
		{"Minor", release.Minor, false},
		{"MAJOR", release.Major, false},
		{"", 0, true},
		{"huge", 0, true},
		{"pat", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := release.ParseBump(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
					t.Fatalf("ParseBump(%q) = %v, %v; want an error naming the value", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseBump(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name string
		tags []string
		bump release.Bump
		want string
	}{
		{"no tags, patch", nil, release.Patch, "0.0.1"},
		{"no tags, minor", nil, release.Minor, "0.1.0"},
		{"no tags, major", nil, release.Major, "1.0.0"},
		{"patch", []string{"v1.2.2", "v1.2.3"}, release.Patch, "1.2.4"},
		{"minor", []string{"v1.2.3"}, release.Minor, "1.3.0"},
		{"major", []string{"v1.2.3"}, release.Major, "2.0.0"},
		{"versions compare as numbers, not text", []string{"v1.9.0", "v1.10.0"}, release.Patch, "1.10.1"},
		{"from the highest release, not the newest tag", []string{"v1.3.0", "v1.2.9"}, release.Patch, "1.3.1"},
		{"only pre-releases: base is v0.0.0", []string{"v1.0.0-rc.1", "v0.5.0-beta.1"}, release.Patch, "0.0.1"},
		{"only pre-releases: major finalizes v1.0.0", []string{"v1.0.0-rc.1"}, release.Major, "1.0.0"},
		{"finalize a release candidate", []string{"v1.2.3", "v1.3.0-rc.1", "v1.3.0-rc.2"}, release.Minor, "1.3.0"},
		{"patch past a pending release candidate", []string{"v1.2.3", "v1.3.0-rc.2"}, release.Patch, "1.2.4"},
		{
			"junk tags are ignored",
			[]string{"v1.2.3", "v9.9", "v01.2.3", "9.9.9", "V9.0.0", "v9.0.0.1", "release-9", "v9.0.0-01", "latest"},
			release.Patch, "1.2.4",
		},
		{"build metadata counts as the version", []string{"v1.2.3+build.5"}, release.Patch, "1.2.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := release.Next(tt.tags, tt.bump)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if got.String() != tt.want {
				t.Errorf("Next(%q, %v) = v%s, want v%s", tt.tags, tt.bump, got, tt.want)
			}
		})
	}
}

func TestNextPre(t *testing.T) {
	tests := []struct {
		name    string
		tags    []string
		id      string
		bump    *release.Bump
		want    string
		wantErr string
	}{
		{name: "no tags", id: "rc", want: "0.0.1-rc.1"},
		{name: "no tags, minor", id: "rc", bump: bumpp(release.Minor), want: "0.1.0-rc.1"},
		{name: "after a release: next patch", tags: []string{"v1.2.3"}, id: "rc", want: "1.2.4-rc.1"},
		{name: "after a release, major", tags: []string{"v1.2.3"}, id: "beta", bump: bumpp(release.Major), want: "2.0.0-beta.1"},
		{name: "continue the release candidate", tags: []string{"v1.2.3", "v1.3.0-rc.1", "v1.3.0-rc.2"}, id: "rc", want: "1.3.0-rc.3"},
		{name: "numbers compare as numbers", tags: []string{"v1.3.0-rc.10", "v1.3.0-rc.9", "v1.2.3"}, id: "rc", want: "1.3.0-rc.11"},
		{name: "only pre-releases: continue", tags: []string{"v1.0.0-rc.1"}, id: "rc", want: "1.0.0-rc.2"},
		{name: "switch from beta to rc on the same core", tags: []string{"v1.2.3", "v1.3.0-beta.2"}, id: "rc", want: "1.3.0-rc.1"},
		{name: "bump with pre restarts at the bumped core", tags: []string{"v1.2.3", "v1.3.0-rc.2"}, id: "rc", bump: bumpp(release.Major), want: "2.0.0-rc.1"},
		{name: "bump with pre to the pending core continues it", tags: []string{"v1.2.3", "v1.3.0-rc.2"}, id: "rc", bump: bumpp(release.Minor), want: "1.3.0-rc.3"},
		{name: "bump patch with pre ignores a pending minor", tags: []string{"v1.2.3", "v1.3.0-rc.2"}, id: "rc", bump: bumpp(release.Patch), want: "1.2.4-rc.1"},
		{name: "pre-release older than the base is done", tags: []string{"v1.2.0-rc.3", "v1.2.3"}, id: "rc", want: "1.2.4-rc.1"},
		{name: "an unnumbered pre-release continues at 1", tags: []string{"v1.2.3", "v1.3.0-rc"}, id: "rc", want: "1.3.0-rc.1"},
		{name: "hyphen in the id", tags: []string{"v1.2.3"}, id: "alpha-1", want: "1.2.4-alpha-1.1"},
		{name: "ids are compared whole", tags: []string{"v1.2.3", "v1.3.0-rc.4"}, id: "rc-x", want: "1.3.0-rc-x.1"},
		{
			name: "junk tags are ignored", id: "rc", want: "1.3.0-rc.2",
			tags: []string{"v1.2.3", "v1.3.0-rc.1", "v1.3.0-rc.01", "1.4.0-rc.1", "v1.4-rc.1", "rc-5"},
		},
		{name: "going back from rc to beta is refused", tags: []string{"v1.2.3", "v1.3.0-rc.1"}, id: "beta", wantErr: "would sort before the existing v1.3.0-rc.1"},
		{name: "empty id", id: "", wantErr: `pre-release id ""`},
		{name: "dot inside the id", id: "rc.1", wantErr: `pre-release id "rc.1"`},
		{name: "leading-zero number", id: "01", wantErr: `pre-release id "01"`},
		{name: "number", id: "123", wantErr: `pre-release id "123"`},
		{name: "space", id: "r c", wantErr: `pre-release id "r c"`},
		{name: "non-ASCII", id: "ünï", wantErr: `pre-release id "ünï"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := release.NextPre(tt.tags, tt.id, tt.bump)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NextPre = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NextPre: %v", err)
			}
			if got.String() != tt.want {
				t.Errorf("NextPre(%q, %q) = v%s, want v%s", tt.tags, tt.id, got, tt.want)
			}
		})
	}
}

func TestPreview(t *testing.T) {
	got := release.Preview([]string{"v1.2.3", "v1.3.0-rc.1"})
	want := []struct{ cmd, version string }{
		{"go tool mage release:patch", "1.2.4"},
		{"go tool mage release:minor", "1.3.0"},
		{"go tool mage release:major", "2.0.0"},
		{"go tool mage release:pre rc", "1.3.0-rc.2"},
	}
	if len(got) != len(want) {
		t.Fatalf("Preview gave %d candidates, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Err != nil || got[i].Command != w.cmd || got[i].Version.String() != w.version {
			t.Errorf("candidate %d = %q v%v (err %v), want %q v%s", i, got[i].Command, got[i].Version, got[i].Err, w.cmd, w.version)
		}
	}
}

func TestIsReleaseTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"v1.2.3":       true,
		"v1.3.0-rc.1":  true,
		"v1.2.3+dirty": false, // a build, not a release
		"v1.2":         false,
		"1.2.3":        false,
		"latest":       false,
		"abc1234":      false,
		"v01.2.3":      false,
	} {
		if got := release.IsReleaseTag(tag); got != want {
			t.Errorf("IsReleaseTag(%q) = %v, want %v", tag, got, want)
		}
	}
}
