// Package workflow holds GitHub Actions workflows to this repository's rule
// that CI runs the developers' commands: every `run:` step is one
// `go tool mage ...` call, with no shell around it (no pipes, lists,
// redirections or command substitution), so that what CI does can always be
// done on a laptop with the same command. actionlint checks the rest.
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

// shell are the characters that would make a run step more than one
// command: pipes, lists, redirections, command substitution, newlines.
var shell = regexp.MustCompile("[|;&<>`\n]|\\$\\(")

// CheckFile checks the workflow at path, naming it as label.
func CheckFile(path, label string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return Check(label, src)
}

// Check checks a workflow's run steps and returns a *problem.List naming
// file, or nil.
func Check(file string, src []byte) error {
	ps := &problem.List{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		ps.Add(0, "not YAML: %v", err)
		return ps.Err()
	}
	for _, job := range mapping(value(root(&doc), "jobs")) {
		for _, step := range sequence(value(job.value, "steps")) {
			run := value(step, "run")
			if run == nil {
				continue
			}
			cmd := strings.TrimSpace(run.Value)
			switch {
			case !strings.HasPrefix(cmd, Prefix):
				ps.Add(run.Line, "jobs.%s: run %q is not a mage target: CI runs `go tool mage <target>`, the command a developer runs", job.key, cmd)
			case shell.MatchString(cmd):
				ps.Add(run.Line, "jobs.%s: run %q is more than one mage call (a pipe, list, redirection or substitution); do it in the target", job.key, cmd)
			}
		}
	}
	return ps.Err()
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
