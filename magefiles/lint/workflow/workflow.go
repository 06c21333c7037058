// Package workflow holds GitHub Actions workflows to this repository's rule
// that CI runs the developers' commands: every `run:` step is one
// `go tool mage ...` call, with no shell around it (no pipes, lists,
// redirections or command substitution), so that what CI does can always be
// done on a laptop with the same command. The same rule keeps what GitHub
// adds to a step out: no `${{ }}` pasted into the script, no `shell:`, and no
// `continue-on-error`, which would throw the target's exit code away; and no
// job GITHUB_TOKEN for a deploy, which Swarm would keep past its revocation.
// actionlint checks the rest.
package workflow

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fractionate/service-template/magefiles/lint/problem"
)

// Prefix starts every run step.
const Prefix = "go tool mage "

// DeployPrefix starts the run steps that change a Swarm.
const DeployPrefix = Prefix + "deploy:"

// jobToken is how a workflow hands a step the job's GITHUB_TOKEN.
var jobToken = regexp.MustCompile(`(?i)secrets\.GITHUB_TOKEN|github\.token`)

// shell are the characters that would make a run step more than one
// command: pipes, lists, redirections, command substitution, newlines.
var shell = regexp.MustCompile("[|;&<>`\n]|\\$\\(")

// expression starts a GitHub expression. In a run step GitHub pastes its
// value into the script before bash reads it, so a branch name or commit
// message can become code (script injection); through env: it is only ever
// a value.
const expression = "${{"

// CheckFile checks the workflow at path, naming it as label.
func CheckFile(path, label string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return Check(label, src)
}

// Check checks a workflow's jobs and steps against the rule above and
// returns a *problem.List naming file, or nil.
func Check(file string, src []byte) error {
	ps := &problem.List{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		ps.Add(0, "not YAML: %v", err)
		return ps.Err()
	}
	top := root(&doc)
	checkDefaults(ps, "defaults", value(top, "defaults"))
	deploys := false
	for _, job := range mapping(value(top, "jobs")) {
		checkContinue(ps, "jobs."+job.key, value(job.value, "continue-on-error"))
		checkDefaults(ps, "jobs."+job.key+".defaults", value(job.value, "defaults"))
		deployJob := false
		for _, step := range sequence(value(job.value, "steps")) {
			checkContinue(ps, "jobs."+job.key+": step "+stepName(step), value(step, "continue-on-error"))
			run := value(step, "run")
			if run == nil {
				continue
			}
			cmd := strings.TrimSpace(run.Value)
			if sh := value(step, "shell"); sh != nil {
				ps.Add(sh.Line, "jobs.%s: run %q sets shell: %s; a run step is one mage call in the runner's default shell, as on a laptop", job.key, cmd, sh.Value)
			}
			if strings.Contains(cmd, expression) {
				ps.Add(run.Line, "jobs.%s: run %q has a ${{ }} expression, which GitHub pastes into the script (script injection); pass it through env: and use \"$NAME\"", job.key, cmd)
			}
			if strings.HasPrefix(cmd, DeployPrefix) {
				checkDeployToken(ps, "jobs."+job.key+": step "+stepName(step), value(step, "env"))
				deployJob = true
			}
			switch {
			case !strings.HasPrefix(cmd, Prefix):
				ps.Add(run.Line, "jobs.%s: run %q is not a mage target: CI runs `go tool mage <target>`, the command a developer runs", job.key, cmd)
			case shell.MatchString(cmd):
				ps.Add(run.Line, "jobs.%s: run %q is more than one mage call (a pipe, list, redirection or substitution); do it in the target", job.key, cmd)
			}
		}
		if deployJob {
			checkDeployToken(ps, "jobs."+job.key, value(job.value, "env"))
			deploys = true
		}
	}
	if deploys {
		checkDeployToken(ps, "workflow", value(top, "env"))
	}
	return ps.Err()
}

// checkContinue reports a continue-on-error other than false at where: it
// turns a failed target into a passing step or job, and the exit codes of
// the targets (the deploy's 1, 2 and 3) are the answer CI exists to give.
func checkContinue(ps *problem.List, where string, n *yaml.Node) {
	if n != nil && n.Value != "false" {
		ps.Add(n.Line, "%s: continue-on-error: %s throws the target's exit code away; let the step fail", where, n.Value)
	}
}

// checkDefaults reports a defaults.run.shell: it would change how every run
// step of the workflow or job is read.
func checkDefaults(ps *problem.List, where string, n *yaml.Node) {
	if sh := value(value(n, "run"), "shell"); sh != nil {
		ps.Add(sh.Line, "%s.run.shell: %s; a run step is one mage call in the runner's default shell, as on a laptop", where, sh.Value)
	}
}

// checkDeployToken reports the job's GITHUB_TOKEN in the env of a deploy
// step. The deploy hands its registry credential to Swarm, which keeps it in
// the service spec and pulls with it again whenever a task is rescheduled or
// rolled back; GitHub revokes the token when the job ends, so those pulls
// would fail.
func checkDeployToken(ps *problem.List, where string, env *yaml.Node) {
	for _, e := range mapping(env) {
		if jobToken.MatchString(e.value.Value) {
			ps.Add(e.value.Line, "%s: env %s: %s reaches a deploy, and Swarm would keep it for later pulls after GitHub revokes it; pass long-lived read-only pull credentials as REGISTRY_USERNAME/REGISTRY_PASSWORD", where, e.key, e.value.Value)
		}
	}
}

// stepName names a step in a problem: its name, else its run or uses.
func stepName(step *yaml.Node) string {
	for _, key := range []string{"name", "run", "uses"} {
		if n := value(step, key); n != nil {
			return fmt.Sprintf("%q", strings.TrimSpace(n.Value))
		}
	}
	return "(empty)"
}

func root(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}

// value is the value of key in the mapping n, or nil.
func value(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

type entry struct {
	key   string
	value *yaml.Node
}

func mapping(n *yaml.Node) []entry {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, entry{n.Content[i].Value, n.Content[i+1]})
	}
	return out
}

func sequence(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}
