package docs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/fractionate/service-template/magefiles/cmdline"
)

// root is the repository's root, from this package's directory.
const root = ".."

// block is a fenced block of a markdown file.
type block struct {
	file  string // slash path from the root
	line  int    // of the opening fence
	lang  string // the fence's info string: sh, yaml, ...
	text  string
	runBy []string // what runs it: <!-- run by: A, B --> on the line before
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// shell says whether a block holds shell commands.
func (b block) shell() bool { return slices.Contains([]string{"sh", "shell", "bash"}, b.lang) }

var runByComment = regexp.MustCompile(`^<!--\s*run by:\s*(.*?)\s*-->$`)

// markdownFiles are the repository's markdown files, slash paths from the
// root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "README.md") || !slices.Contains(files, "docs/deploying.md") {
		t.Fatalf("the markdown files found (%q) lack the README or docs/: this test would check nothing", files)
	}
	return files
}

// readBlocks returns the fenced blocks of a markdown file, and its lines
// outside them.
func readBlocks(t *testing.T, file string) (blocks []block, prose []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	var cur *block
	var runBy []string
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimLeft(line, " ") + "\n" // blocks indented in a list
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:3]
			cur = &block{file: file, line: n, lang: strings.TrimSpace(strings.TrimLeft(trimmed, fence[:1])), runBy: runBy}
			runBy = nil
		default:
			runBy = nil
			if m := runByComment.FindStringSubmatch(trimmed); m != nil {
				for name := range strings.SplitSeq(m[1], ",") {
					runBy = append(runBy, strings.TrimSpace(name))
				}
			}
			prose = append(prose, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s: a block opened at line %d is never closed", file, cur.line)
	}
	return blocks, prose
}

// mageCommands returns the go tool mage commands of a shell script, each
// as the arguments after "mage", with shell variables standing for any
// value ("$IMAGE" is the word VALUE).
func mageCommands(name, script string) ([][]string, error) {
	f, err := syntax.NewParser().Parse(strings.NewReader(script), name)
	if err != nil {
		return nil, err
	}
	cfg := &expand.Config{Env: expand.FuncEnviron(func(string) string { return "VALUE" })}
	var cmds [][]string
	var errs []error
	syntax.Walk(f, func(node syntax.Node) bool {
		call, ok := node.(*syntax.CallExpr)
		if !ok || len(call.Args) < 3 {
			return true
		}
		words, err := expand.Fields(cfg, call.Args...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", call.Pos(), err))
			return true
		}
		if len(words) >= 3 && slices.Equal(words[:3], []string{"go", "tool", "mage"}) {
			cmds = append(cmds, words[3:])
		}
		return true
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return cmds, nil
}

var (
	targetsOnce sync.Once
	targets     []cmdline.Target
	aliases     map[string]string
	targetsErr  error
)

// theTargets are the targets as mage reads them from their source.
func theTargets(t *testing.T) ([]cmdline.Target, map[string]string) {
	t.Helper()
	targetsOnce.Do(func() { targets, aliases, targetsErr = cmdline.Describe(filepath.Join(root, "magefiles")) })
	if targetsErr != nil {
		t.Fatal(targetsErr)
	}
	return targets, aliases
}

// checkCommand checks the arguments of a go tool mage command as the
// magefile's guard would, mage's own flags first.
func checkCommand(t *testing.T, args []string) error {
	t.Helper()
	ts, as := theTargets(t)
	for len(args) > 0 && args[0] == "-v" {
		args = args[1:]
	}
	switch {
	case len(args) > 0 && args[0] == "-l":
		return nil
	case len(args) == 2 && args[0] == "-h":
		return cmdline.Check(args[1:2], slices.Collect(func(yield func(cmdline.Target) bool) {
			for _, tg := range ts {
				tg.Args, tg.Flags = nil, nil // -h names a target alone
				if !yield(tg) {
					return
				}
			}
		}), as)
	}
	return cmdline.Check(args, ts, as)
}

// checkScript checks every go tool mage command of a shell script, and
// returns how many there are.
func checkScript(t *testing.T, where, script string) int {
	t.Helper()
	cmds, err := mageCommands(where, script)
	if err != nil {
		t.Errorf("%s: not a shell script: %v", where, err)
		return 0
	}
	for _, args := range cmds {
		if err := checkCommand(t, args); err != nil {
			t.Errorf("%s: go tool mage %s: %v", where, strings.Join(args, " "), err)
		}
	}
	return len(cmds)
}

// Every go tool mage command in a shell block of the documentation is one
// the targets take: the targets exist, with that many arguments, of their
// types, and the flags are theirs.
func TestDocumentedCommandsAreTargets(t *testing.T) {
	n := 0
	for _, file := range markdownFiles(t) {
		blocks, _ := readBlocks(t, file)
		for _, b := range blocks {
			if !b.shell() {
				continue
			}
			n += checkScript(t, b.String(), b.text)
		}
	}
	if n < 20 {
		t.Fatalf("only %d go tool mage commands found in the documentation's shell blocks: is the parsing broken?", n)
	}
}

// The workflows' run: steps are go tool mage commands the targets take.
func TestWorkflowCommandsAreTargets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflow found: %v", err)
	}
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					Name string `yaml:"name"`
					Run  string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(data, &wf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for job, j := range wf.Jobs {
			for _, s := range j.Steps {
				if s.Run == "" {
					continue
				}
				n += checkScript(t, fmt.Sprintf("%s: job %s, step %q", filepath.Base(file), job, s.Name), s.Run)
			}
		}
	}
	if n == 0 {
		t.Fatal("no go tool mage command found in the workflows' run: steps")
	}
}

var (
	testDecl  = regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	testsOnce sync.Once
	testFiles map[string]string // test name -> slash path of the file declaring it
)

// declaredTests finds every Test function of the repository.
func declaredTests(t *testing.T) map[string]string {
	t.Helper()
	testsOnce.Do(func() {
		testFiles = map[string]string{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			for _, m := range testDecl.FindAllSubmatch(data, -1) {
				testFiles[string(m[1])] = filepath.ToSlash(rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return testFiles
}

// runs reports whether source runs the mage command args: the target as a
// quoted string or after "mage ", and each of its flags.
func runs(source string, args []string) bool {
	for len(args) > 1 && (args[0] == "-v" || args[0] == "-h") {
		args = args[1:] // mage's own flags: verbose, help
	}
	src := strings.ToLower(source)
	target := strings.ToLower(args[0])
	asCall := regexp.MustCompile(`mage\s+` + regexp.QuoteMeta(target) + `(\s|"|$)`)
	if !strings.Contains(src, `"`+target+`"`) && !asCall.MatchString(src) {
		return false
	}
	for _, a := range args[1:] {
		if name, _, _ := strings.Cut(strings.ToLower(a), "="); strings.HasPrefix(name, "-") && !strings.Contains(src, name) {
			return false
		}
	}
	return true
}

// A block that claims to run names what runs it: each named test exists,
// and each of its mage commands (the target and its flags) appears in the
// source of a named test's file or of a named script.
func TestRunnableBlocksNameWhatRunsThem(t *testing.T) {
	tests := declaredTests(t)
	marked := 0
	for _, file := range markdownFiles(t) {
		blocks, _ := readBlocks(t, file)
		for _, b := range blocks {
			if len(b.runBy) == 0 {
				continue
			}
			marked++
			sources := map[string]string{}
			for _, name := range b.runBy {
				p := filepath.FromSlash(name)
				if strings.HasPrefix(name, "Test") {
					f, ok := tests[name]
					if !ok {
						t.Errorf("%s: run by %s, but no test of that name exists", b, name)
						continue
					}
					p = filepath.FromSlash(f)
				}
				data, err := os.ReadFile(filepath.Join(root, p))
				if err != nil {
					t.Errorf("%s: run by %s: %v", b, name, err)
					continue
				}
				sources[name] = string(data)
			}
			cmds, err := mageCommands(b.String(), b.text)
			if err != nil || len(cmds) == 0 {
				t.Errorf("%s: marked as run, but holds no go tool mage command (%v)", b, err)
				continue
			}
			for _, args := range cmds {
				if !slices.ContainsFunc(b.runBy, func(name string) bool { return runs(sources[name], args) }) {
					t.Errorf("%s: go tool mage %s: none of %s runs it (its target and flags appear in none of their sources)", b, strings.Join(args, " "), strings.Join(b.runBy, ", "))
				}
			}
		}
	}
	if marked < 3 {
		t.Fatalf("only %d blocks are marked as run: the README's set-up and laptop paths and docs/deploying.md's first deploy should be", marked)
	}
}

func TestRuns(t *testing.T) {
	src := "out := run(t, \"deploy:setup\", \"e2e\", \"-dryrun\")\ngo tool mage test\n"
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"deploy:setup", "staging", "-dryrun"}, true},
		{[]string{"deploy:setup", "staging", "-secret=x"}, false},
		{[]string{"test"}, true},
		{[]string{"-v", "test"}, true},
		{[]string{"deploy:to", "staging"}, false},
		{[]string{"deploy"}, false}, // a prefix of a target named is not it
	}
	for _, tt := range tests {
		if got := runs(src, tt.args); got != tt.want {
			t.Errorf("runs(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

var (
	mdLink   = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	codeSpan = regexp.MustCompile("`[^`]*`")
	heading  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*$`)
)

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// anchors are the anchors of a markdown file's headings.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	_, prose := readBlocks(t, file)
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range prose {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"The production stack's rules":                        "the-production-stacks-rules",
		"`deploy/environments.yml`":                           "deployenvironmentsyml",
		"Provenance: reproducible digests, SBOMs, signatures": "provenance-reproducible-digests-sboms-signatures",
		"Scaling: `deploy:top`":                               "scaling-deploytop",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// Every relative link of the documentation resolves: the file exists, and
// an anchor into a markdown file is one of its headings.
func TestRelativeLinksResolve(t *testing.T) {
	n := 0
	for _, file := range markdownFiles(t) {
		_, prose := readBlocks(t, file)
		for _, line := range prose {
			for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
				link := m[1]
				if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
					continue
				}
				n++
				target, anchor, _ := strings.Cut(link, "#")
				p := file
				if target != "" {
					p = path.Join(path.Dir(file), target)
					if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
						t.Errorf("%s: link %s: %v", file, link, err)
						continue
					}
				}
				if anchor != "" && strings.HasSuffix(p, ".md") && !anchors(t, p)[anchor] {
					t.Errorf("%s: link %s: %s has no heading with anchor #%s", file, link, p, anchor)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d relative links found: is the parsing broken?", n)
	}
}

// The end-to-end scenarios are listed next to the tests: every TestE2E
// test of the repository is named in magefiles/deploy/README.md.
func TestEndToEndTestsAreListed(t *testing.T) {
	const list = "magefiles/deploy/README.md"
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(list)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, file := range declaredTests(t) {
		if !strings.HasPrefix(name, "TestE2E") {
			continue
		}
		n++
		if !bytes.Contains(data, []byte("`"+name+"`")) {
			t.Errorf("%s (%s) is not listed in %s", name, file, list)
		}
	}
	if n < 10 {
		t.Fatalf("only %d end-to-end tests found", n)
	}
}

// The README stays an entrance: the rest belongs in docs/.
func TestReadmeIsShort(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n > 220 {
		t.Errorf("README.md has %d lines; keep it to about 200 and move the detail into docs/", n)
	}
}
