//go:build mage

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/magefile/mage/mg"
	"golang.org/x/term"

	"github.com/fractionate/service-template/magefiles/template"
)

// Template makes this repository a new service.
type Template mg.Namespace

// Renames the module path and the service's name everywhere they stand for this service, and points the environments at your registry and Swarm managers; refuses uncommitted changes; -dryrun prints the edits.
func (Template) Init(ctx context.Context, module string,
	name *string, // the service's name; default: the module path's last element
	registry *string, // where the environments pull the image from, like ghcr.io/acme
	stagingHost *string, // the staging Swarm manager, like ssh://deploy@staging.acme.com
	productionHost *string, // the production Swarm manager
	dryRun *bool, // print the edits, change nothing
) error {
	o := template.Options{Module: module, Name: deref(name), Registry: deref(registry), Endpoints: map[string]string{}}
	if v := deref(stagingHost); v != "" {
		o.Endpoints["staging"] = v
	}
	if v := deref(productionHost); v != "" {
		o.Endpoints["production"] = v
	}
	// Ask only a person, and not for a dry run: from CI or a pipe, what
	// no flag gives stays a marked placeholder.
	dry := dryRun != nil && *dryRun
	if term.IsTerminal(int(os.Stdin.Fd())) && !dry {
		in := bufio.NewReader(os.Stdin)
		o.Ask = func(question, def string) (string, error) {
			fmt.Fprintf(os.Stderr, "%s [%s]: ", question, def)
			line, err := in.ReadString('\n')
			return strings.TrimSpace(line), err
		}
	}
	return template.Init(ctx, ".", o, dry, os.Stdout)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
