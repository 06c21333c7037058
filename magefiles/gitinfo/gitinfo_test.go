package gitinfo_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/gitinfo/gittest"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestRead(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(r *gittest.Repo)
		getenv      map[string]string
		wantBranch  string
		wantDirty   bool
		wantChanges []string
		wantAtHead  []string
		wantTags    []string
	}{
		{
			name:       "clean tree on main",
			setup:      func(r *gittest.Repo) {},
			wantBranch: "main",
		},
		{
			name:        "modified tracked file is dirty",
			setup:       func(r *gittest.Repo) { r.Write("a.txt", "changed") },
			wantBranch:  "main",
			wantDirty:   true,
			wantChanges: []string{"a.txt"},
		},
		{
			name:        "untracked file is dirty",
			setup:       func(r *gittest.Repo) { r.Write("new file.txt", "x") },
			wantBranch:  "main",
			wantDirty:   true,
			wantChanges: []string{"new file.txt"},
		},
		{
			name: "staged rename reports the new path only",
			setup: func(r *gittest.Repo) {
				r.Git("mv", "a.txt", "b.txt")
			},
			wantBranch:  "main",
			wantDirty:   true,
			wantChanges: []string{"b.txt"},
		},
		{
			name: "ignored file is not dirty",
			setup: func(r *gittest.Repo) {
				r.Commit(".gitignore", "*.log\n")
				r.Write("build.log", "noise")
			},
			wantBranch: "main",
		},
		{
			name: "untracked files count even when the repo hides them",
			setup: func(r *gittest.Repo) {
				r.Git("config", "status.showUntrackedFiles", "no")
				r.Write("new.txt", "x")
			},
			wantBranch:  "main",
			wantDirty:   true,
			wantChanges: []string{"new.txt"},
		},
		{
			name:       "feature branch",
			setup:      func(r *gittest.Repo) { r.Git("switch", "-q", "-c", "feature/x") },
			wantBranch: "feature/x",
		},
		{
			name:       "detached HEAD without CI hints has no branch",
			setup:      func(r *gittest.Repo) { r.Git("switch", "-q", "--detach") },
			wantBranch: "",
		},
		{
			name:       "detached HEAD in a pull request has no branch",
			setup:      func(r *gittest.Repo) { r.Git("switch", "-q", "--detach") },
			getenv:     map[string]string{"GITHUB_HEAD_REF": "feature/pr", "GITHUB_REF_NAME": "12/merge", "GITHUB_REF_TYPE": "branch"},
			wantBranch: "",
		},
		{
			name:       "detached HEAD on a CI tag build has no branch",
			setup:      func(r *gittest.Repo) { r.Git("switch", "-q", "--detach") },
			getenv:     map[string]string{"GITHUB_REF_NAME": "v1.2.3", "GITHUB_REF_TYPE": "tag"},
			wantBranch: "",
		},
		{
			name:       "a checked-out branch wins over CI hints",
			setup:      func(r *gittest.Repo) {},
			getenv:     map[string]string{"GITHUB_REF_NAME": "other", "GITHUB_REF_TYPE": "branch"},
			wantBranch: "main",
		},
		{
			name: "tags at head and elsewhere",
			setup: func(r *gittest.Repo) {
				r.Git("tag", "v1.0.0")
				r.Commit("b.txt", "b")
				r.Git("tag", "-a", "v1.1.0", "-m", "annotated")
				r.Git("tag", "latest-light")
			},
			wantBranch: "main",
			wantAtHead: []string{"latest-light", "v1.1.0"},
			wantTags:   []string{"latest-light", "v1.0.0", "v1.1.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gittest.New(t)
			r.Commit("a.txt", "a")
			tt.setup(r)
			wantSHA := r.Git("rev-parse", "HEAD")

			f, err := gitinfo.Read(context.Background(), r.Dir, env(tt.getenv))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if f.SHA != wantSHA {
				t.Errorf("SHA = %q, want %q", f.SHA, wantSHA)
			}
			if f.Branch != tt.wantBranch {
				t.Errorf("Branch = %q, want %q", f.Branch, tt.wantBranch)
			}
			if f.Dirty() != tt.wantDirty {
				t.Errorf("Dirty() = %v, want %v", f.Dirty(), tt.wantDirty)
			}
			if !slices.Equal(f.Changes, tt.wantChanges) {
				t.Errorf("Changes = %q, want %q", f.Changes, tt.wantChanges)
			}
			if !slices.Equal(f.TagsAtHead, tt.wantAtHead) {
				t.Errorf("TagsAtHead = %q, want %q", f.TagsAtHead, tt.wantAtHead)
			}
			if !slices.Equal(f.Tags, tt.wantTags) {
				t.Errorf("Tags = %q, want %q", f.Tags, tt.wantTags)
			}
		})
	}
}

func TestReadCommitTime(t *testing.T) {
	r := gittest.New(t)
	t.Setenv("GIT_COMMITTER_DATE", "1715000000 +0200")
	t.Setenv("GIT_AUTHOR_DATE", "1600000000 +0000") // must not be used
	r.Commit("a.txt", "a")

	f, err := gitinfo.Read(context.Background(), r.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Unix(1715000000, 0).UTC()
	if !f.CommitTime.Equal(want) || f.CommitTime.Location() != time.UTC {
		t.Errorf("CommitTime = %v, want %v", f.CommitTime, want)
	}
}

func TestReadFromSubdirectory(t *testing.T) {
	r := gittest.New(t)
	r.Commit("sub/a.txt", "a")
	f, err := gitinfo.Read(context.Background(), filepath.Join(r.Dir, "sub"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.SHA != r.Git("rev-parse", "HEAD") {
		t.Errorf("SHA = %q, want HEAD of the enclosing repository", f.SHA)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name    string
		dir     func(t *testing.T) string
		wantErr string
	}{
		{
			name: "not a repository",
			dir: func(t *testing.T) string {
				gittest.Isolate(t)
				return t.TempDir()
			},
			wantErr: "is not a git working tree",
		},
		{
			name: "missing directory",
			dir: func(t *testing.T) string {
				gittest.Isolate(t)
				return filepath.Join(t.TempDir(), "nope")
			},
			wantErr: "is not a git working tree",
		},
		{
			name: "inside the .git directory",
			dir: func(t *testing.T) string {
				r := gittest.New(t)
				r.Commit("a.txt", "a")
				return filepath.Join(r.Dir, ".git")
			},
			wantErr: "is not a git working tree",
		},
		{
			name: "repository without a commit",
			dir: func(t *testing.T) string {
				return gittest.New(t).Dir
			},
			wantErr: "has no commit yet",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir(t)
			_, err := gitinfo.Read(context.Background(), dir, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Read(%s) error = %v, want one containing %q", dir, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the directory", err)
			}
		})
	}
}

func TestBranchFromCI(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no CI", nil, ""},
		{"pull request: a merge commit on no branch", map[string]string{"GITHUB_HEAD_REF": "feature/x", "GITHUB_REF_NAME": "7/merge", "GITHUB_REF_TYPE": "branch"}, ""},
		{"pull request from a fork's main gets no latest", map[string]string{"GITHUB_HEAD_REF": "main", "GITHUB_REF_NAME": "8/merge", "GITHUB_REF_TYPE": "branch"}, ""},
		{"branch push", map[string]string{"GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}, "main"},
		{"tag push", map[string]string{"GITHUB_REF_NAME": "v1.2.3", "GITHUB_REF_TYPE": "tag"}, ""},
		{"ref name without type", map[string]string{"GITHUB_REF_NAME": "main"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gitinfo.BranchFromCI(env(tt.env)); got != tt.want {
				t.Errorf("BranchFromCI = %q, want %q", got, tt.want)
			}
		})
	}
}
