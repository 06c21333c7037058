package dockerimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fractionate/service-template/magefiles/runner"
)

// CopyRepo copies the files of the repository at src into dst (which may
// exist): what git tracks plus untracked files git does not ignore, the
// working-tree versions. Without git (or outside a repository) it copies the
// whole tree except .git. It reads src only: benchmarks and tests change the
// copy, never the real tree.
func CopyRepo(ctx context.Context, src, dst string) error {
	files, err := repoFiles(ctx, src)
	if err != nil {
		return err
	}
	for _, rel := range files {
		if err := copyFile(filepath.Join(src, rel), filepath.Join(dst, rel)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted in the working tree but still in the index
			}
			return fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	return nil
}

func repoFiles(ctx context.Context, src string) ([]string, error) {
	if out, err := runner.Output(ctx, runner.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard")); err == nil {
		var files []string
		for f := range strings.SplitSeq(out, "\x00") {
			if f != "" {
				files = append(files, filepath.FromSlash(f))
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

func copyFile(from, to string) error {
	fi, err := os.Lstat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(link, to)
	case fi.IsDir(): // a submodule or nested repository: not part of this one
		return nil
	case !fi.Mode().IsRegular():
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
