package dockerimage

import (
	"maps"
	"testing"
	"time"
)

func TestVersionFromTags(t *testing.T) {
	tests := []struct {
		tags []string
		want string
	}{
		{[]string{"abc1234", "main", "latest", "v1.2.3", "v1.2"}, "v1.2.3"},
		{[]string{"abc1234", "v2.0.0-rc.1"}, "v2.0.0-rc.1"},
		{[]string{"abc1234", "feature-x"}, "abc1234"},
		{[]string{"abc1234-dirty"}, "abc1234-dirty"},
		{[]string{"abc1234", "v1.2"}, "abc1234"}, // vX.Y alone is not a version
		{nil, "dev"},
		// Only release.ParseTag's versions count: branch names that merely
		// start like one are not (the tag scheme prefixes them anyway).
		{[]string{"abc1234", "v1.2.3.4"}, "abc1234"},
		{[]string{"abc1234", "v1.2.3foo"}, "abc1234"},
		{[]string{"abc1234", "v1.2.3_hotfix"}, "abc1234"},
		{[]string{"abc1234", "v1.2.3-"}, "abc1234"},
		{[]string{"abc1234", "v1.2.3-rc..1"}, "abc1234"},
		{[]string{"abc1234", "v01.2.3"}, "abc1234"},
		{[]string{"abc1234", "V1.2.3"}, "abc1234"},
		{[]string{"abc1234", "1.2.3"}, "abc1234"},
		{[]string{"abc1234", "branch-v1.2.3"}, "abc1234"},
		{[]string{"abc1234", "v1.2.3.4", "v1.2.3"}, "v1.2.3"},
	}
	for _, tt := range tests {
		if got := VersionFromTags(tt.tags); got != tt.want {
			t.Errorf("VersionFromTags(%q) = %q, want %q", tt.tags, got, tt.want)
		}
	}
}

func TestStampBuildArgs(t *testing.T) {
	s := Stamp{Version: "v1.2.3", Commit: "abc", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))}
	got := map[string]string{}
	for k, v := range s.BuildArgs() {
		got[k] = *v
	}
	// UTC, RFC 3339; empty Source and Title are left to the Dockerfile.
	want := map[string]string{"VERSION": "v1.2.3", "COMMIT": "abc", "CREATED": "2025-01-02T02:04:05Z"}
	if !maps.Equal(got, want) {
		t.Errorf("BuildArgs() = %v, want %v", got, want)
	}
	if got := (Stamp{}).CreatedString(); got != "" {
		t.Errorf("zero Created = %q, want empty", got)
	}
}

func TestSourceURL(t *testing.T) {
	tests := []struct{ server, repo, origin, want string }{
		{"https://github.example.com", "acme/api", "", "https://github.example.com/acme/api"},
		{"", "acme/api", "git@github.com:x/y.git", "https://github.com/acme/api"},
		{"", "", "https://tok:en@github.com/acme/api.git", "https://github.com/acme/api"},
		{"", "", "https://gitlab.com/acme/api.git", ""},
	}
	for _, tt := range tests {
		if got := SourceURL(tt.server, tt.repo, tt.origin); got != tt.want {
			t.Errorf("SourceURL(%q, %q, %q) = %q, want %q", tt.server, tt.repo, tt.origin, got, tt.want)
		}
	}
}
