package template

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Init is template:init: it refuses a tree with uncommitted changes,
// plans, and applies the plan (with dryRun, prints it instead). What it
// did, or would do, goes to out.
func Init(ctx context.Context, root string, o Options, dryRun bool, out io.Writer) error {
	dirty, err := Uncommitted(ctx, root)
	if err != nil {
		return err
	}
	if len(dirty) > 0 && !dryRun {
		return fmt.Errorf("the working tree has uncommitted changes; commit or stash them first, so that the rename can be reviewed and undone on its own: %s", strings.Join(firstN(dirty, 10), ", "))
	}
	p, err := Make(ctx, root, o)
	if err != nil {
		return err
	}
	p.PrintHeader(out)
	if dryRun {
		p.PrintEdits(out)
		if len(dirty) > 0 {
			fmt.Fprintf(out, "note: the tree has uncommitted changes (%s); without -dryrun template:init refuses to run\n", strings.Join(firstN(dirty, 3), ", "))
		}
		return nil
	}
	if len(p.Edits) == 0 {
		fmt.Fprintln(out, "nothing to change")
		return nil
	}
	if err := p.Apply(root); err != nil {
		return err
	}
	p.PrintSummary(out)
	return nil
}

// Apply writes the plan's files under root, keeping their modes.
func (p *Plan) Apply(root string) error {
	for _, f := range p.Files() {
		name := filepath.Join(root, filepath.FromSlash(f))
		fi, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		// Write beside and rename: a file is either old or new, never half.
		tmp, err := os.CreateTemp(filepath.Dir(name), ".template-init-*")
		if err != nil {
			return fmt.Errorf("apply %s: %w", f, err)
		}
		_, werr := tmp.Write(p.contents[f])
		cerr := tmp.Close()
		if err := firstErr(werr, cerr, os.Chmod(tmp.Name(), fi.Mode().Perm())); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("apply %s: %w", f, err)
		}
		if err := os.Rename(tmp.Name(), name); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("apply %s: %w", f, err)
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// PrintHeader says what is renamed to what, and the deploy settings.
func (p *Plan) PrintHeader(w io.Writer) {
	for _, from := range p.From {
		if from != p.To {
			fmt.Fprintf(w, "rename %s -> %s\n", from, p.To)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range p.Settings {
		if s.Old == s.New {
			fmt.Fprintf(tw, "  %s:\t%s\t(%s)\n", s.What, s.New, s.Source)
		} else {
			fmt.Fprintf(tw, "  %s:\t%s\t(%s; was %s)\n", s.What, s.New, s.Source, s.Old)
		}
	}
	_ = tw.Flush()
	for _, warning := range p.Warnings {
		fmt.Fprintln(w, "warning:", warning)
	}
}

// PrintEdits prints every edit: file, kind, old -> new, count.
func (p *Plan) PrintEdits(w io.Writer) {
	if len(p.Edits) == 0 {
		fmt.Fprintln(w, "nothing to change")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range p.Edits {
		fmt.Fprintf(tw, "%s\t%s\t%s -> %s\tx%d\n", e.File, e.Kind, e.Old, e.New, e.Count)
	}
	_ = tw.Flush()
	p.printTotals(w, "would change")
}

// PrintSummary prints the files changed, with counts per kind, and totals.
func (p *Plan) PrintSummary(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range p.Files() {
		var parts []string
		for _, k := range kindOrder {
			if n := p.count(func(e Edit) bool { return e.File == f && e.Kind == k }); n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, n))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", f, strings.Join(parts, ", "))
	}
	_ = tw.Flush()
	p.printTotals(w, "changed")
	fmt.Fprintln(w, "review with git diff, then commit; go tool mage check runs lint and the unit tests")
}

func (p *Plan) printTotals(w io.Writer, verb string) {
	var parts []string
	for _, k := range kindOrder {
		files := map[string]bool{}
		n := p.count(func(e Edit) bool {
			if e.Kind == k {
				files[e.File] = true
			}
			return e.Kind == k
		})
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d in %d file(s)", k, n, len(files)))
		}
	}
	fmt.Fprintf(w, "%s %d file(s): %s\n", verb, len(p.contents), strings.Join(parts, "; "))
}

func (p *Plan) count(match func(Edit) bool) int {
	n := 0
	for _, e := range p.Edits {
		if match(e) {
			n += e.Count
		}
	}
	return n
}
