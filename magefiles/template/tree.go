package template

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
)

// The files the current identity and the environments are read from,
// relative to the repository root.
const (
	goModFile        = "go.mod"
	localComposeFile = "docker-compose.yml" // its top-level name: is the service's name
	environmentsFile = "deploy/environments.yml"
)

// git runs git in dir and returns its output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

func nulSeparated(out string) []string {
	var files []string
	for f := range strings.SplitSeq(out, "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// Uncommitted lists what git status reports in the working tree at root:
// changed, staged and untracked files. It fails outside a git working tree,
// since then nothing could undo a rename.
func Uncommitted(ctx context.Context, root string) ([]string, error) {
	if _, err := git(ctx, root, "rev-parse", "--verify", "-q", "HEAD^{commit}"); err != nil {
		return nil, fmt.Errorf("%s is not a git working tree with a commit (template:init refuses to change what git cannot give back): git init && git add -A && git commit first", root)
	}
	out, err := git(ctx, root, "status", "--porcelain", "-z", "--untracked-files=all")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range nulSeparated(out) {
		if len(e) > 3 && e[2] == ' ' {
			files = append(files, e[3:])
		}
		// A rename's second entry (its source) has no status prefix: the
		// destination above already names the change.
	}
	return files, nil
}

// trackedFiles lists the files git tracks at root (slash paths).
func trackedFiles(ctx context.Context, root string) ([]string, error) {
	out, err := git(ctx, root, "ls-files", "-z")
	if err != nil {
		return nil, err
	}
	return nulSeparated(out), nil
}

// readModule returns the module path of root's go.mod.
func readModule(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, goModFile))
	if err != nil {
		return "", fmt.Errorf("read the module path: %w", err)
	}
	p := modfile.ModulePath(data)
	if p == "" {
		return "", fmt.Errorf("%s: no module directive", goModFile)
	}
	return p, nil
}

// readName returns the service's current name: the local compose file's
// project name.
func readName(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, localComposeFile))
	if err != nil {
		return "", fmt.Errorf("read the service's name: %w", err)
	}
	var doc struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", localComposeFile, err)
	}
	if doc.Name == "" {
		return "", fmt.Errorf("%s: no top-level name: (the compose project's name is the service's name template:init renames)", localComposeFile)
	}
	return doc.Name, nil
}

// environment is what template:init reads of one deploy environment.
type environment struct {
	Name     string
	Endpoint *yaml.Node // the endpoint: scalar, nil when there is none
	Image    string
	Stack    string
	Files    []string
	Local    bool // it has a registry: of its own on this machine
}

// readEnvironments reads deploy/environments.yml, sorted by name. Keys
// template:init does not use are left to magefiles/deploy to check.
func readEnvironments(root string) ([]environment, error) {
	data, err := os.ReadFile(filepath.Join(root, environmentsFile))
	if err != nil {
		return nil, fmt.Errorf("read the environments: %w", err)
	}
	var doc struct {
		Environments map[string]struct {
			Endpoint yaml.Node `yaml:"endpoint"`
			Image    string    `yaml:"image"`
			Stack    string    `yaml:"stack"`
			Files    []string  `yaml:"files"`
			Registry yaml.Node `yaml:"registry"`
		} `yaml:"environments"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", environmentsFile, err)
	}
	var envs []environment
	for name, e := range doc.Environments {
		env := environment{Name: name, Image: e.Image, Stack: e.Stack, Files: e.Files, Local: !e.Registry.IsZero()}
		if e.Endpoint.Kind == yaml.ScalarNode && e.Endpoint.Value != "" {
			ep := e.Endpoint
			env.Endpoint = &ep
		}
		envs = append(envs, env)
	}
	slices.SortFunc(envs, func(a, b environment) int { return strings.Compare(a.Name, b.Name) })
	return envs, nil
}

// stackShape is what the stack files name that a service name ends up in.
type stackShape struct {
	longestService, longestSecret string
}

// readStackShape reads the services and secrets of the environments' stack
// files.
func readStackShape(root string, envs []environment) (stackShape, error) {
	var s stackShape
	var files []string
	for _, e := range envs {
		files = append(files, e.Files...)
	}
	slices.Sort(files)
	for _, f := range slices.Compact(files) {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // magefiles/deploy reports it
		}
		if err != nil {
			return s, err
		}
		var doc struct {
			Services map[string]yaml.Node `yaml:"services"`
			Secrets  map[string]yaml.Node `yaml:"secrets"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return s, fmt.Errorf("%s: %w", f, err)
		}
		for k := range doc.Services {
			if len(k) > len(s.longestService) {
				s.longestService = k
			}
		}
		for k := range doc.Secrets {
			if len(k) > len(s.longestSecret) {
				s.longestSecret = k
			}
		}
	}
	return s, nil
}

// isBinary reports data that is not text: template:init leaves it alone.
func isBinary(data []byte) bool {
	return bytes.IndexByte(data, 0) >= 0
}
