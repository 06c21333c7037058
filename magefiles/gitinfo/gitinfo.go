// Package gitinfo reads the git facts of a working tree that image tags,
// labels and releases are computed from.
//
// It only reads; commands that change a repository are planned elsewhere and
// run through the runner package.
package gitinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/bitfield/script"
)

// Facts are what a build or a release needs to know about a working tree.
type Facts struct {
	SHA        string    // full 40-hex commit id of HEAD
	Branch     string    // checked-out branch, else the CI hint; empty when detached
	Changes    []string  // uncommitted changes and untracked files, as git status reports them
	TagsAtHead []string  // tags that point at HEAD
	Tags       []string  // every tag in the repository
	CommitTime time.Time // committer time of HEAD, UTC: reproducible image labels
}

// Dirty reports uncommitted changes or untracked files.
func (f Facts) Dirty() bool { return len(f.Changes) > 0 }

// Read collects the facts of the working tree at dir. getenv supplies CI
// hints for the branch when HEAD is detached; nil means there are none.
func Read(ctx context.Context, dir string, getenv func(string) string) (Facts, error) {
	var f Facts
	out, err := git(ctx, dir, "rev-parse", "--is-inside-work-tree")
	if err != nil {
		return f, fmt.Errorf("%s is not a git working tree: %w", dir, err)
	}
	if strings.TrimSpace(out) != "true" {
		return f, fmt.Errorf("%s is not a git working tree", dir)
	}
	// --verify fails quietly on a repository that has no commit yet, where
	// HEAD names a branch that does not exist.
	sha, err := git(ctx, dir, "rev-parse", "--verify", "-q", "HEAD^{commit}")
	if err != nil {
		return f, fmt.Errorf("git repository %s has no commit yet", dir)
	}
	f.SHA = strings.TrimSpace(sha)

	ct, err := git(ctx, dir, "show", "-s", "--format=%ct", f.SHA)
	if err != nil {
		return f, fmt.Errorf("read commit time of %s: %w", f.SHA, err)
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(ct), 10, 64)
	if err != nil {
		return f, fmt.Errorf("read commit time of %s: %w", f.SHA, err)
	}
	f.CommitTime = time.Unix(secs, 0).UTC()

	if f.Branch, err = branch(ctx, dir); err != nil {
		return f, err
	}
	if f.Branch == "" && getenv != nil {
		f.Branch = BranchFromCI(getenv)
	}

	if f.Changes, err = changes(ctx, dir); err != nil {
		return f, err
	}

	if f.TagsAtHead, err = lines(git(ctx, dir, "tag", "--list", "--points-at", f.SHA)); err != nil {
		return f, fmt.Errorf("list tags at HEAD: %w", err)
	}
	if f.Tags, err = lines(git(ctx, dir, "tag", "--list")); err != nil {
		return f, fmt.Errorf("list tags: %w", err)
	}
	return f, nil
}

// BranchFromCI names the branch a CI job builds when the checkout is a
// detached HEAD, as GitHub Actions checks out a branch push. A pull request
// gives "": its HEAD is a merge commit that is on no branch (tagging it with
// the source branch's name, which may even be a fork's main, would mislead);
// a tag build gives "" too.
func BranchFromCI(getenv func(string) string) string {
	if getenv("GITHUB_REF_TYPE") == "branch" && getenv("GITHUB_HEAD_REF") == "" {
		return getenv("GITHUB_REF_NAME")
	}
	return ""
}

func branch(ctx context.Context, dir string) (string, error) {
	out, err := git(ctx, dir, "symbolic-ref", "--short", "-q", "HEAD")
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return "", nil // detached HEAD
	}
	if err != nil {
		return "", fmt.Errorf("read branch: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// changes lists changed and untracked paths. The flags are explicit so that
// the user's status settings (e.g. status.showUntrackedFiles=no) cannot hide
// changes, and -z keeps unusual file names unquoted.
func changes(ctx context.Context, dir string) ([]string, error) {
	out, err := git(ctx, dir, "status", "--porcelain=v1", "-z", "--untracked-files=normal", "--ignored=no")
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var paths []string
	entries := strings.Split(out, "\x00")
	for i := 0; i < len(entries); i++ {
		e := entries[i]
		if len(e) < 4 {
			continue
		}
		paths = append(paths, e[3:])
		if e[0] == 'R' || e[0] == 'C' {
			i++ // a rename or copy is followed by its source path
		}
	}
	return paths, nil
}

// git runs a read-only git command in dir and returns its standard output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	var stderr bytes.Buffer
	out, err := script.NewPipe().WithContext(ctx).WithStderr(&stderr).
		ExecCommand("git", append([]string{"-C", dir}, args...)...).String()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

func lines(out string, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	var ls []string
	for l := range strings.Lines(out) {
		if l = strings.TrimSpace(l); l != "" {
			ls = append(ls, l)
		}
	}
	return ls, nil
}
