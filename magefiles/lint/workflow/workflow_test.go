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
	// One problem per line of shell.yml that breaks the rule, in line order;
	// every other line is allowed (a "$VAR" or "${VAR}" from env:,
	// continue-on-error: false, GITHUB_TOKEN for a step that is no deploy).
	want := []string{
		`shell.yml:5: defaults.run.shell: bash --noprofile --norc -eo pipefail {0}; a run step is one mage call`,
		`shell.yml:13: jobs.build: run "go test ./..." is not a mage target`,
		`shell.yml:14: jobs.build: run "go tool mage image:push | tee push.log" is more than one mage call`,
		`shell.yml:15: jobs.build: run "go tool mage lint\ngo tool mage test" is more than one mage call`,
		`shell.yml:18: jobs.build: run "go tool mage lint && go tool mage test" is more than one mage call`,
		`shell.yml:19: jobs.build: run "go tool mage deploy:staging -image=$(cat image.txt)" is more than one mage call`,
		`shell.yml:20: jobs.build: run "go tool mage release:pre ${{ github.event.head_commit.message }}" has a ${{ }} expression, which GitHub pastes into the script (script injection); pass it through env:`,
		`shell.yml:27: jobs.build: step "Test": continue-on-error: true throws the target's exit code away`,
		`shell.yml:29: jobs.build: run "go tool mage lint" sets shell: sh;`,
		`shell.yml:31: jobs.build: step "actions/setup-go@924ae3a1cded613372ab5595356fb5720e22ba16": continue-on-error: ${{ github.event_name == 'pull_request' }} throws`,
		`shell.yml:36: jobs.deploy: continue-on-error: true throws the target's exit code away`,
		`shell.yml:39: jobs.deploy.defaults.run.shell: pwsh;`,
		`shell.yml:45: jobs.release: env GH: ${{ github.token }} reaches a deploy, and Swarm would keep it for later pulls after GitHub revokes it; pass long-lived read-only pull credentials as REGISTRY_USERNAME/REGISTRY_PASSWORD`,
		`shell.yml:54: jobs.release: step "Deploy": env GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }} reaches a deploy`,
		`shell.yml:58: workflow: env TOKEN: ${{ github.token }} reaches a deploy`,
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
