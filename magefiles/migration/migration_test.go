package migration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestNextFile(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		arg      string
		want     string
		wantErr  string
	}{
		{"first", nil, "create_users", "00001_create_users.sql", ""},
		{"after two", []string{"00001_a.sql", "00002_b.sql", "embed.go"}, "add_email", "00003_add_email.sql", ""},
		{"gap keeps highest", []string{"00001_a.sql", "00007_b.sql"}, "c", "00008_c.sql", ""},
		{"ignores non-migrations", []string{"README.md", "1_old.sql"}, "x", "00001_x.sql", ""},
		{"upper case", nil, "AddEmail", "", `migration name "AddEmail"`},
		{"spaces", nil, "add email", "", `migration name "add email"`},
		{"path", nil, "../evil", "", `migration name "../evil"`},
		{"empty", nil, "", "", `migration name ""`},
		{"leading digit", nil, "1st", "", `migration name "1st"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.existing {
				fsys[f] = &fstest.MapFile{}
			}
			file, content, err := NextFile(fsys, tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if file != tt.want {
				t.Errorf("file = %q, want %q", file, tt.want)
			}
			for _, s := range []string{"-- +goose Up", "-- +goose Down"} {
				if !strings.Contains(string(content), s) {
					t.Errorf("content lacks %q", s)
				}
			}
		})
	}
}

func TestCreateWritesTheFileOnce(t *testing.T) {
	dir := t.TempDir()
	path, err := Create(dir, "first")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "00001_first.sql" {
		t.Fatalf("path = %s", path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	path2, err := Create(dir, "first")
	if err != nil || filepath.Base(path2) != "00002_first.sql" {
		t.Fatalf("second Create = %s, %v", path2, err)
	}
}
