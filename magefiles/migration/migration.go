// Package migration creates new migration files in the layout the service's
// migrator (goose) reads: NNNNN_name.sql with an Up and a Down section.
package migration

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

var (
	validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	numbered  = regexp.MustCompile(`^(\d{5})_.*\.sql$`)
)

// NextFile returns the file name and content of a new migration called name,
// numbered one past the highest in dir.
func NextFile(dir fs.FS, name string) (string, []byte, error) {
	if !validName.MatchString(name) {
		return "", nil, fmt.Errorf("migration name %q: use lower case letters, digits and underscores, starting with a letter (e.g. add_users_email)", name)
	}
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return "", nil, fmt.Errorf("read migrations: %w", err)
	}
	highest := 0
	for _, e := range entries {
		m := numbered.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		highest = max(highest, n)
	}
	file := fmt.Sprintf("%05d_%s.sql", highest+1, name)
	content := fmt.Sprintf(`-- %s: say why this change is needed.

-- +goose Up
-- Statements that apply the change. Each migration runs in one transaction.

-- +goose Down
-- Statements that revert exactly what Up did.
`, name)
	return file, []byte(content), nil
}

// Create writes the next migration into dir and returns its path. It never
// overwrites a file.
func Create(dir, name string) (string, error) {
	file, content, err := NextFile(os.DirFS(dir), name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, file)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(content); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, f.Close()
}
