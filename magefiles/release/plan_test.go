package release_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/gitinfo/gittest"
	"github.com/fractionate/service-template/magefiles/release"
	"github.com/fractionate/service-template/magefiles/runner"
)

func TestCheck(t *testing.T) {
	clean := gitinfo.Facts{SHA: strings.Repeat("a", 40), Branch: "main"}
	with := func(change func(*gitinfo.Facts)) gitinfo.Facts {
		f := clean
		change(&f)
		return f
	}
	tests := []struct {
		name    string
		facts   gitinfo.Facts
		branch  string
		wantErr string // "" for no error
	}{
		{name: "clean tree on the release branch", facts: clean, branch: "main"},
		{name: "release branch defaults to main", facts: clean, branch: ""},
		{
			name:    "default release branch is main",
			facts:   with(func(f *gitinfo.Facts) { f.Branch = "develop" }),
			branch:  "",
			wantErr: `releases are made from branch "main"`,
		},
		{
			name:    "dirty tree lists its changes",
			facts:   with(func(f *gitinfo.Facts) { f.Changes = []string{"a.go", "b.go"} }),
			branch:  "main",
			wantErr: "uncommitted changes (a.go, b.go)",
		},
		{
			name: "dirty tree lists five changes at most",
			facts: with(func(f *gitinfo.Facts) {
				f.Changes = []string{"1", "2", "3", "4", "5", "6", "7"}
			}),
			branch:  "main",
			wantErr: "(1, 2, 3, 4, 5 and 2 more)",
		},
		{
			name:    "other branch",
			facts:   with(func(f *gitinfo.Facts) { f.Branch = "feature/x" }),
			branch:  "main",
			wantErr: `HEAD is on branch "feature/x": releases are made from branch "main"`,
		},
		{
			name:    "detached HEAD",
			facts:   with(func(f *gitinfo.Facts) { f.Branch = "" }),
			branch:  "main",
			wantErr: "HEAD is detached",
		},
		{
			name:   "configured release branch",
			facts:  with(func(f *gitinfo.Facts) { f.Branch = "trunk" }),
			branch: "trunk",
		},
		{
			name:    "main is not the configured release branch",
			facts:   clean,
			branch:  "trunk",
			wantErr: `releases are made from branch "trunk"`,
		},
		{
			name:    "already released",
			facts:   with(func(f *gitinfo.Facts) { f.TagsAtHead = []string{"deployed", "v1.2.3"} }),
			branch:  "main",
			wantErr: "HEAD is already released as v1.2.3",
		},
		{
			name:   "a release candidate at HEAD may be promoted",
			facts:  with(func(f *gitinfo.Facts) { f.TagsAtHead = []string{"v1.3.0-rc.2"} }),
			branch: "main",
		},
		{
			name:   "non-release tags at HEAD do not count",
			facts:  with(func(f *gitinfo.Facts) { f.TagsAtHead = []string{"v1.2", "1.2.3", "v01.2.3"} }),
			branch: "main",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := release.Check(tt.facts, tt.branch)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// doRelease is what a release target does: plan, then apply for real.
func doRelease(t *testing.T, o release.Options, choose release.Choose) (release.Plan, error) {
	t.Helper()
	ctx := context.Background()
	p, err := release.Prepare(ctx, o, choose)
	if err != nil {
		return p, err
	}
	var out bytes.Buffer
	return p, release.Apply(ctx, runner.Exec{Stdout: &out, Stderr: &out, Quiet: true}, p)
}

func TestRelease(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(r *gittest.Repo)
		opts   release.Options
		choose release.Choose
		want   string
	}{
		{
			name:   "first release",
			setup:  func(r *gittest.Repo) {},
			choose: release.Final(release.Patch),
			want:   "v0.0.1",
		},
		{
			name: "minor after earlier releases",
			setup: func(r *gittest.Repo) {
				r.Git("tag", "-a", "v1.2.3", "-m", "Release v1.2.3")
				r.Commit("b.txt", "b")
			},
			choose: release.Final(release.Minor),
			want:   "v1.3.0",
		},
		{
			name: "finalize the release candidate on its own commit",
			setup: func(r *gittest.Repo) {
				r.Git("tag", "v1.2.3", "HEAD")
				r.Commit("b.txt", "b")
				r.Git("tag", "-a", "v1.3.0-rc.1", "-m", "rc")
			},
			choose: release.Final(release.Minor),
			want:   "v1.3.0",
		},
		{
			name: "next release candidate",
			setup: func(r *gittest.Repo) {
				r.Git("tag", "v1.2.3")
				r.Commit("b.txt", "b")
				r.Git("tag", "v1.3.0-rc.1")
				r.Commit("c.txt", "c")
			},
			choose: release.Pre("rc", nil),
			want:   "v1.3.0-rc.2",
		},
		{
			name: "pre-release with a bump",
			setup: func(r *gittest.Repo) {
				r.Git("tag", "v1.2.3")
				r.Commit("b.txt", "b")
			},
			choose: release.Pre("beta", bumpp(release.Major)),
			want:   "v2.0.0-beta.1",
		},
		{
			name: "tags on other branches count",
			setup: func(r *gittest.Repo) {
				r.Git("switch", "-q", "-c", "release-1.x")
				r.Commit("fix.txt", "fix")
				r.Git("tag", "v1.4.0")
				r.Git("switch", "-q", "main")
			},
			choose: release.Final(release.Patch),
			want:   "v1.4.1",
		},
		{
			name:   "configured release branch",
			setup:  func(r *gittest.Repo) { r.Git("switch", "-q", "-c", "trunk") },
			opts:   release.Options{Branch: "trunk"},
			choose: release.Final(release.Minor),
			want:   "v0.1.0",
		},
		{
			name:  "CI checkout of the release branch",
			setup: func(r *gittest.Repo) { r.Git("switch", "-q", "--detach") },
			opts: release.Options{Getenv: func(k string) string {
				return map[string]string{"GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}[k]
			}},
			choose: release.Final(release.Patch),
			want:   "v0.0.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gittest.New(t)
			r.Commit("a.txt", "a")
			tt.setup(r)
			head := r.Git("rev-parse", "HEAD")
			tt.opts.Dir = r.Dir

			p, err := doRelease(t, tt.opts, tt.choose)
			if err != nil {
				t.Fatalf("release: %v", err)
			}
			if p.Tag != tt.want || "v"+p.Version.String() != tt.want {
				t.Errorf("plan tag %q, version v%s; want %s", p.Tag, p.Version, tt.want)
			}
			if got := r.Git("cat-file", "-t", tt.want); got != "tag" {
				t.Errorf("%s is a %q object, want an annotated tag", tt.want, got)
			}
			if got := r.Git("rev-parse", tt.want+"^{commit}"); got != head {
				t.Errorf("%s points at %s, want HEAD %s", tt.want, got, head)
			}
			if got := r.Git("tag", "-l", "--format=%(contents:subject)", tt.want); got != "Release "+tt.want {
				t.Errorf("tag message %q, want %q", got, "Release "+tt.want)
			}
			if got := p.NextStep(); got != "git push origin "+tt.want {
				t.Errorf("NextStep = %q", got)
			}
		})
	}
}

func TestPreparePlansATagOfTheCheckedCommit(t *testing.T) {
	r := gittest.New(t)
	head := r.Commit("a.txt", "a")
	p, err := release.Prepare(context.Background(), release.Options{Dir: r.Dir}, release.Final(release.Minor))
	if err != nil {
		t.Fatal(err)
	}
	rec := &runner.Recorder{}
	if err := release.Apply(context.Background(), rec, p); err != nil {
		t.Fatal(err)
	}
	want := []string{"git tag -a v0.1.0 -m 'Release v0.1.0' " + head + "  (in " + r.Dir + ")"}
	if got := rec.Lines(); !slices.Equal(got, want) {
		t.Errorf("commands:\n%q\nwant\n%q", got, want)
	}
	if tags := r.Tags(); len(tags) != 0 {
		t.Errorf("a recorded plan created tags %q", tags)
	}
}

func TestReleaseRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, r *gittest.Repo) string // returns the directory to release from
		choose  release.Choose
		wantErr string
	}{
		{
			name:    "modified file",
			setup:   func(t *testing.T, r *gittest.Repo) string { r.Write("a.txt", "changed"); return r.Dir },
			choose:  release.Final(release.Patch),
			wantErr: "uncommitted changes (a.txt)",
		},
		{
			name:    "untracked file",
			setup:   func(t *testing.T, r *gittest.Repo) string { r.Write("notes.txt", "x"); return r.Dir },
			choose:  release.Pre("rc", nil),
			wantErr: "uncommitted changes (notes.txt)",
		},
		{
			name:    "off the release branch",
			setup:   func(t *testing.T, r *gittest.Repo) string { r.Git("switch", "-q", "-c", "feature/x"); return r.Dir },
			choose:  release.Final(release.Minor),
			wantErr: `HEAD is on branch "feature/x"`,
		},
		{
			name:    "detached HEAD",
			setup:   func(t *testing.T, r *gittest.Repo) string { r.Git("switch", "-q", "--detach"); return r.Dir },
			choose:  release.Final(release.Patch),
			wantErr: "HEAD is detached",
		},
		{
			name: "already released",
			setup: func(t *testing.T, r *gittest.Repo) string {
				r.Git("tag", "-a", "v1.2.3", "-m", "Release v1.2.3")
				return r.Dir
			},
			choose:  release.Final(release.Patch),
			wantErr: "HEAD is already released as v1.2.3",
		},
		{
			name:    "already released, pre-release asked",
			setup:   func(t *testing.T, r *gittest.Repo) string { r.Git("tag", "v1.2.3"); return r.Dir },
			choose:  release.Pre("rc", nil),
			wantErr: "HEAD is already released as v1.2.3",
		},
		{
			name:    "invalid pre-release id is reported before the dirty tree",
			setup:   func(t *testing.T, r *gittest.Repo) string { r.Write("a.txt", "changed"); return r.Dir },
			choose:  release.Pre("rc.1", nil),
			wantErr: `pre-release id "rc.1"`,
		},
		{
			name:    "not a repository",
			setup:   func(t *testing.T, r *gittest.Repo) string { return t.TempDir() },
			choose:  release.Final(release.Patch),
			wantErr: "is not a git working tree",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gittest.New(t)
			r.Commit("a.txt", "a")
			dir := tt.setup(t, r)
			before := r.Tags()

			_, err := doRelease(t, release.Options{Dir: dir}, tt.choose)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("release error = %v, want one containing %q", err, tt.wantErr)
			}
			if after := r.Tags(); !slices.Equal(after, before) {
				t.Errorf("tags changed from %q to %q", before, after)
			}
		})
	}
}
