// Package cmdline checks a mage command line against the targets before
// any target runs. Mage runs the targets of a command line one after the
// other and finds a word it does not know only when it gets there: `go tool
// mage deploy:rollback local dryrun` rolled back, and only then said
// "Unknown target specified: dryrun". The magefile calls Guard from init,
// with a table of the targets generated from their source (Describe), so a
// stray word, a missing argument or an unknown flag stops the whole command
// line first.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is a mage target as the command line sees it.
type Target struct {
	Name  string            // as typed, lower-case: deploy:to
	Args  []Arg             // positional, in order
	Flags map[string]string // optional -name=value, by lower-case name: their Go types

	// How go tool mage -l shows it, for the README's table (Markdown);
	// the generated Go table leaves them out.
	Spelled  string // deploy:rollbackTo
	Synopsis string // the doc comment's first sentence
	Default  bool   // runs when mage is given no target
}

// Arg is a positional argument.
type Arg struct {
	Name, Type string // Type is a Go type: string, int, float64, bool, time.Duration
}

// Check walks args as mage will (a target, its arguments, then its flags,
// then the next target) and reports the first word that is none of them.
// aliases maps an alias to the target it runs.
func Check(args []string, targets []Target, aliases map[string]string) error {
	byName := map[string]Target{}
	for _, t := range targets {
		byName[t.Name] = t
	}
	prev := ""
	for x := 0; x < len(args); {
		word := args[x]
		x++
		name := strings.ToLower(word)
		if a, ok := aliases[name]; ok {
			name = a
		}
		t, ok := byName[name]
		if !ok {
			if prev == "" {
				return fmt.Errorf("%q is not a target", word)
			}
			return fmt.Errorf("%q is not a target, nor an argument or flag of %s (which takes %s)", word, prev, byName[prev].usage())
		}
		if x+len(t.Args) > len(args) {
			return fmt.Errorf("%s needs %d argument(s) (%s), got %d", t.Name, len(t.Args), t.usage(), len(args)-x)
		}
		for _, a := range t.Args {
			if err := checkValue(a.Type, args[x]); err != nil {
				return fmt.Errorf("%s: argument <%s> %q: %w", t.Name, a.Name, args[x], err)
			}
			if a.Type == "string" && t.isFlag(args[x]) {
				return fmt.Errorf("%s: argument <%s> is %q, one of its flags: flags go after the arguments (%s)", t.Name, a.Name, args[x], t.usage())
			}
			x++
		}
		for x < len(args) && strings.HasPrefix(args[x], "-") {
			if err := t.checkFlag(args[x]); err != nil {
				return err
			}
			x++
		}
		prev = t.Name
	}
	return nil
}

// usage is how a target is called: deploy:to <env> [-image=string ...].
func (t Target) usage() string {
	var parts []string
	for _, a := range t.Args {
		parts = append(parts, "<"+a.Name+">")
	}
	for _, name := range sortedKeys(t.Flags) {
		parts = append(parts, "[-"+name+"="+t.Flags[name]+"]")
	}
	if len(parts) == 0 {
		return "no arguments"
	}
	return strings.Join(parts, " ")
}

// isFlag reports whether word is one of t's flags (-name or -name=value):
// where an argument goes, that is a flag put too early, while "-1" is the
// argument mage will pass on.
func (t Target) isFlag(word string) bool {
	name, _, _ := strings.Cut(strings.TrimPrefix(word, "-"), "=")
	_, ok := t.Flags[strings.ToLower(name)]
	return strings.HasPrefix(word, "-") && ok
}

func (t Target) checkFlag(word string) error {
	name, value, hasValue := strings.Cut(word[1:], "=")
	name = strings.ToLower(name)
	typ, ok := t.Flags[name]
	switch {
	case !ok:
		return fmt.Errorf("%s: unknown flag %q (it takes %s)", t.Name, word, t.usage())
	case !hasValue && typ != "bool":
		return fmt.Errorf("%s: flag -%s needs a value: -%s=<%s>", t.Name, name, name, typ)
	case hasValue:
		if err := checkValue(typ, value); err != nil {
			return fmt.Errorf("%s: flag -%s=%q: %w", t.Name, name, value, err)
		}
	}
	return nil
}

// checkValue parses v as mage will parse it for a Go type.
func checkValue(typ, v string) error {
	var err error
	switch typ {
	case "int":
		_, err = strconv.Atoi(v)
	case "float64":
		_, err = strconv.ParseFloat(v, 64)
	case "bool":
		_, err = strconv.ParseBool(v)
	case "time.Duration":
		_, err = time.ParseDuration(v)
	}
	if err != nil {
		return fmt.Errorf("not a %s", typ)
	}
	return nil
}

// Guard checks the command line of a compiled magefile (args without the
// program's name) before its first target runs: on a bad one it writes why
// to w and exits 1, the exit code of a change refused before it began. A
// listing or help (-l, -h, or mage's MAGEFILE_LIST / MAGEFILE_HELP) is left
// to mage.
func Guard(args []string, getenv func(string) string, targets []Target, aliases map[string]string, w io.Writer, exit func(int)) {
	if getenv("MAGEFILE_LIST") != "" || getenv("MAGEFILE_HELP") != "" {
		return
	}
	// The compiled binary's own flags, as mage's generated main parses them.
	fs := flag.NewFlagSet("mage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	list, help := fs.Bool("l", false, ""), fs.Bool("h", false, "")
	fs.Bool("v", false, "")
	fs.Duration("t", 0, "")
	if err := fs.Parse(args); err != nil {
		return // mage says what is wrong with its flags
	}
	if *list || *help {
		return
	}
	if err := Check(fs.Args(), targets, aliases); err != nil {
		fmt.Fprintf(w, "Error: %v; nothing was run (go tool mage -l lists the targets, go tool mage -h <target> explains one)\n", err)
		exit(1)
	}
}

// ErrNoTargets is returned by Describe for a directory without targets.
var ErrNoTargets = errors.New("no mage targets found")

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
