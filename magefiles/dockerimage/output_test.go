package dockerimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPinned(t *testing.T) {
	tests := []struct {
		name    string
		pushed  []Pushed
		want    string
		wantErr string
	}{
		{"one tag", []Pushed{{"ghcr.io/acme/api:abc1234", digestA}}, "ghcr.io/acme/api@" + digestA, ""},
		{"every tag of one image", []Pushed{{"ghcr.io/acme/api:v1.2.3", digestA}, {"ghcr.io/acme/api:v1.2", digestA}}, "ghcr.io/acme/api@" + digestA, ""},
		{"Docker Hub name normalized", []Pushed{{"acme/api:abc1234", digestA}}, "docker.io/acme/api@" + digestA, ""},
		{"registry with a port", []Pushed{{"127.0.0.1:5000/api:abc1234", digestA}}, "127.0.0.1:5000/api@" + digestA, ""},
		{"tags of two images", []Pushed{{"ghcr.io/acme/api:a", digestA}, {"ghcr.io/acme/api:b", digestB}}, "", "do not name one image"},
		{"nothing pushed", nil, "", "nothing was pushed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pinned(tt.pushed)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Pinned = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Pinned = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestAppendOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "github_output")
	if err := os.WriteFile(path, []byte("earlier=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AppendOutput(path, "image", "ghcr.io/acme/api@"+digestA); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "earlier=1\nimage=ghcr.io/acme/api@" + digestA + "\n"; string(b) != want {
		t.Fatalf("file = %q, want %q", b, want)
	}
	for _, bad := range [][2]string{{"image", "two\nlines"}, {"a=b", "x"}, {"", "x"}} {
		if err := AppendOutput(path, bad[0], bad[1]); err == nil {
			t.Errorf("AppendOutput(%q, %q) = nil, want an error", bad[0], bad[1])
		}
	}
}
