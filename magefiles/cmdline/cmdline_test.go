package cmdline

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite magefiles/targets_gen.go and the README's table of targets")

var table = []Target{
	{Name: "lint"},
	{Name: "deploy:rollback", Args: []Arg{{"env", "string"}}, Flags: map[string]string{"dryrun": "bool"}},
	{Name: "deploy:to", Args: []Arg{{"env", "string"}}, Flags: map[string]string{"image": "string", "dryrun": "bool"}},
	{Name: "db:rollbackto", Args: []Arg{{"version", "int"}}},
	{Name: "secrets:prune", Args: []Arg{{"env", "string"}}, Flags: map[string]string{"keep": "int"}},
	{Name: "test:all"},
}

func TestCheck(t *testing.T) {
	aliases := map[string]string{"test": "test:all"}
	tests := []struct {
		name string
		args []string
		err  string // "" when the line is good
	}{
		{"nothing: the default target", nil, ""},
		{"a target", []string{"lint"}, ""},
		{"targets in a row", []string{"lint", "deploy:to", "local", "-dryrun", "test"}, ""},
		{"flags with values, any case", []string{"deploy:to", "local", "-Image=r/app:v1", "-dryrun=true"}, ""},
		{"an alias", []string{"test"}, ""},
		{"a stray word after a change", []string{"deploy:rollback", "local", "dryrun"}, `"dryrun" is not a target, nor an argument or flag of deploy:rollback (which takes <env> [-dryrun=bool])`},
		{"an unknown target first", []string{"deploy:rollbak", "local"}, `"deploy:rollbak" is not a target`},
		{"a missing argument", []string{"deploy:to"}, "deploy:to needs 1 argument(s) (<env> [-dryrun=bool] [-image=string]), got 0"},
		{"a flag where the argument goes", []string{"deploy:to", "-dryrun", "local"}, "deploy:to: argument <env> is \"-dryrun\", one of its flags: flags go after the arguments"},
		{"a negative number as an argument is the target's to judge", []string{"secrets:prune", "-1"}, ""},
		{"an unknown flag", []string{"deploy:to", "local", "-dry-run"}, `deploy:to: unknown flag "-dry-run"`},
		{"a flag without its value", []string{"deploy:to", "local", "-image"}, "flag -image needs a value: -image=<string>"},
		{"a bool flag with a bad value", []string{"deploy:to", "local", "-dryrun=yes"}, `flag -dryrun="yes": not a bool`},
		{"an int argument", []string{"db:rollbackto", "x"}, `db:rollbackto: argument <version> "x": not a int`},
		{"an int flag", []string{"secrets:prune", "local", "-keep=two"}, `flag -keep="two": not a int`},
		{"the stray word is after a good target", []string{"lint", "local"}, `"local" is not a target, nor an argument or flag of lint (which takes no arguments)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.args, table, aliases)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

// Guard leaves listings and help to mage, and stops a bad line with exit 1.
func TestGuard(t *testing.T) {
	run := func(env map[string]string, args ...string) (int, string) {
		var out bytes.Buffer
		code := -1
		Guard(args, func(k string) string { return env[k] }, table, nil, &out, func(c int) { code = c })
		return code, out.String()
	}
	if code, out := run(nil, "deploy:rollback", "local", "dryrun"); code != 1 || !strings.Contains(out, "nothing was run") {
		t.Errorf("a stray word: exit %d, %q", code, out)
	}
	for _, args := range [][]string{{"-l"}, {"-h", "deploy:to"}, {"-v", "lint"}, {"-t", "5m", "lint"}} {
		if code, out := run(nil, args...); code != -1 {
			t.Errorf("%q: exit %d, %q", args, code, out)
		}
	}
	if code, _ := run(map[string]string{"MAGEFILE_HELP": "1"}, "deploy:to"); code != -1 {
		t.Errorf("help through mage's variable was checked as a command line")
	}
	if code, _ := run(nil, "-v", "deploy:to", "local", "nope"); code != 1 {
		t.Errorf("a stray word after mage's own flag went through")
	}
}

// The table the magefile guards with is the targets as they are: a target
// added, or a flag renamed, without regenerating it fails here.
func TestTargetTableIsCurrent(t *testing.T) {
	targets, aliases, err := Describe("..")
	if err != nil {
		t.Fatal(err)
	}
	src, err := Generate(targets, aliases)
	if err != nil {
		t.Fatal(err)
	}
	const file = "../targets_gen.go"
	if *update {
		if err := os.WriteFile(file, src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, src) {
		t.Fatalf("%s is not the targets as they are: run go test ./magefiles/cmdline -update", file)
	}
	checkReadmeTable(t, targets, aliases)
	found := map[string]bool{}
	for _, tg := range targets {
		found[tg.Name] = true
	}
	for _, want := range []string{"deploy:to", "deploy:rollbackto", "test", "test:unit", "lint"} {
		if !found[want] {
			t.Errorf("target %s is not in the table", want)
		}
	}
}

// The README's table of targets is the targets as they are too, made from
// the same reading of their source.
func checkReadmeTable(t *testing.T, targets []Target, aliases map[string]string) {
	t.Helper()
	const file = "../../README.md"
	have, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReplaceSection(have, Markdown(targets, aliases))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if *update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		have = want
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("%s: the table of targets is not the targets as they are: run go test ./magefiles/cmdline -update", file)
	}
}

func TestMarkdown(t *testing.T) {
	targets := []Target{
		{Name: "check", Spelled: "check", Synopsis: "Runs lint and the unit tests.", Default: true},
		{Name: "deploy:rollbackto", Spelled: "deploy:rollbackTo", Args: []Arg{{"env", "string"}, {"to", "string"}},
			Flags: map[string]string{"dryrun": "bool", "keep": "int"}, Synopsis: "puts <env> back on `<to>`: a|b."},
		{Name: "test:all", Synopsis: "every test"},
	}
	got := string(Markdown(targets, map[string]string{"test": "test:all"}))
	want := "| target | flags | what it does |\n|---|---|---|\n" +
		"| `check` (default) |  | Runs lint and the unit tests. |\n" +
		"| `deploy:rollbackTo <env> <to>` | `-dryrun` `-keep=<int>` | Puts &lt;env&gt; back on `<to>`: a\\|b. |\n" +
		"| `test:all` (alias: `test`) |  | Every test |\n"
	if got != want {
		t.Errorf("Markdown =\n%s\nwant\n%s", got, want)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# x\n" + SectionBegin + "old\n" + SectionEnd + "tail\n"
	got, err := ReplaceSection([]byte(doc), []byte("new\n"))
	if err != nil || string(got) != "# x\n"+SectionBegin+"new\n"+SectionEnd+"tail\n" {
		t.Errorf("ReplaceSection = %q, %v", got, err)
	}
	if _, err := ReplaceSection([]byte("# x\n"+SectionBegin+"no end\n"), nil); err == nil {
		t.Error("a section without its end marker was replaced")
	}
}

func TestSpell(t *testing.T) {
	for name, want := range map[string]string{
		"Deploy:RollbackTo":        "deploy:rollbackTo",
		"Image:VerifyReproducible": "image:verifyReproducible",
		"Check":                    "check",
		"Test:E2e":                 "test:e2e",
		"HTTPServe":                "httpServe",
		"DB:New":                   "db:new",
	} {
		if got := spell(name); got != want {
			t.Errorf("spell(%q) = %q, want %q", name, got, want)
		}
	}
}
