package workflow

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	err := CheckFile(filepath.Join("testdata", "shell.yml"), "shell.yml")
	if err == nil {
		t.Fatal("want problems")
	}
	want := []string{
		`shell.yml:10: jobs.build: run "go test ./..." is not a mage target`,
		`shell.yml:11: jobs.build: run "go tool mage image:push | tee push.log" is more than one mage call`,
		`shell.yml:12: jobs.build: run "go tool mage lint\ngo tool mage test" is more than one mage call`,
		`shell.yml:15: jobs.build: run "go tool mage lint && go tool mage test" is more than one mage call`,
		`shell.yml:16: jobs.build: run "go tool mage deploy:staging -image=$(cat image.txt)" is more than one mage call`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q\nwant prefix  %q", i, got[i], want[i])
		}
	}
}

func TestRepositoryWorkflows(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows: %v", err)
	}
	for _, f := range files {
		if err := CheckFile(f, filepath.Base(f)); err != nil {
			t.Error(err)
		}
	}
}
