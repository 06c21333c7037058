// Package template makes a new service out of this repository: it renames
// the Go module path and the service's name wherever they stand for this
// service, and points the deploy environments at the service's own image
// repository and Swarm managers (template:init).
//
// It plans first and applies second: Plan reads the tree and returns the
// edits as data (file, kind, old, new, count), which a dry run prints and
// Apply writes. What each occurrence means, and so whether it is renamed,
// is decided by the rules in rules.go, not by a blind search and replace.
package template

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"golang.org/x/mod/module"
)

// Identity is what names a service in its files.
type Identity struct {
	Module string // the Go module path, e.g. example.com/acme/billing
	Name   string // compose project, stacks, image, labels, e.g. billing
}

func (id Identity) String() string { return id.Module + " (" + id.Name + ")" }

// Origin is the identity of the tree this package was made in. template:init
// renames these literals like every other occurrence, so a tree copied from
// a service made with it knows where it came from. That matters for gonew,
// which rewrites go.mod and import paths only: the Dockerfile's ldflags and
// every other mention still name the origin, and template:init finds them
// through Origin once go.mod no longer does.
var Origin = Identity{
	Module: "github.com/fractionate/service-template",
	Name:   "service-template",
}

// DefaultName is the name a module path implies: its last element without
// a major version suffix (example.com/acme/billing/v2 gives billing),
// lower-cased, with '_' and '.' turned into '-'.
func DefaultName(modulePath string) string {
	prefix, _, ok := module.SplitPathVersion(modulePath)
	if !ok {
		prefix = modulePath
	}
	name := strings.ToLower(path.Base(prefix))
	return strings.NewReplacer("_", "-", ".", "-").Replace(name)
}

// CheckModule refuses what the go command would refuse as a module path.
func CheckModule(modulePath string) error {
	if err := module.CheckPath(modulePath); err != nil {
		return fmt.Errorf("module path: %w", err)
	}
	return nil
}

// Limits are the lengths a name must keep to, from what the tree builds
// out of it (see NameLimits).
type Limits struct {
	Max    int    // the longest name allowed
	Reason string // why, naming the longest thing the name ends up in
}

// The length limits of what a name becomes.
const (
	maxDNSLabel      = 63 // a service name in Swarm's DNS, a compose project's hostnames
	maxStack         = 48 // deploy/environments.yml's stack names (magefiles/deploy)
	maxSwarmService  = 63 // <stack>_<service>
	maxSwarmSecret   = 64 // <stack>_<secret>_v<N>
	secretVersionPad = len("_v9999")
)

var nameRule = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

// CheckName refuses a name that cannot become everything it names: a DNS
// label, a compose project, a stack, and an image repository's last
// element, within lim.
func CheckName(name string, lim Limits) error {
	switch {
	case name == "":
		return fmt.Errorf("name: empty")
	case !nameRule.MatchString(name):
		return fmt.Errorf("name %q: use lower-case letters, digits and '-', starting with a letter and not ending with '-' (it becomes a DNS label, a stack and an image name)", name)
	case len(name) > lim.Max:
		return fmt.Errorf("name %q: %d characters, at most %d: %s", name, len(name), lim.Max, lim.Reason)
	}
	return nil
}

// NameLimits works out how long a name may be, given how the tree uses it:
// stackSuffix is the longest addition an environment's stack makes to the
// name (len("-staging")), service and secret the longest service and secret
// names of the stack files.
func NameLimits(stackSuffix int, service, secret string) Limits {
	lim := Limits{Max: maxDNSLabel, Reason: "a DNS label has at most 63"}
	try := func(max int, reason string) {
		if max < lim.Max {
			lim = Limits{Max: max, Reason: reason}
		}
	}
	try(maxStack-stackSuffix, fmt.Sprintf("an environment's stack adds %d characters and a stack name has at most %d", stackSuffix, maxStack))
	if service != "" {
		try(maxSwarmService-stackSuffix-1-len(service),
			fmt.Sprintf("Swarm names the service <stack>_%s, which must stay within %d characters", service, maxSwarmService))
	}
	if secret != "" {
		try(maxSwarmSecret-stackSuffix-1-len(secret)-secretVersionPad,
			fmt.Sprintf("the deploy names secret versions <stack>_%s_v<N>, which must stay within Swarm's %d characters (room is kept for N up to 9999)", secret, maxSwarmSecret))
	}
	return lim
}

// CheckRegistry refuses a -registry that cannot prefix an image name: it
// must be a registry host with an optional path (ghcr.io/acme,
// registry.example.com:5000), lower-case, without tag or digest.
func CheckRegistry(registry, name string) error {
	if registry == "" {
		return fmt.Errorf("registry: empty")
	}
	if registry != strings.ToLower(registry) {
		return fmt.Errorf("registry %q: use lower case (registries such as ghcr.io refuse upper case)", registry)
	}
	ref, err := reference.ParseNamed(registry + "/" + name)
	switch {
	case errors.Is(err, reference.ErrNameNotCanonical):
		return fmt.Errorf("registry %q: it must start with the registry's host (a name with a '.' or a ':port', or localhost), like ghcr.io/acme", registry)
	case err != nil || !reference.IsNameOnly(ref):
		return fmt.Errorf("registry %q: want a registry host and an optional path, like ghcr.io/acme or registry.example.com:5000", registry)
	}
	return nil
}

// endpointSchemes are the Docker hosts an environment's endpoint may name
// (magefiles/deploy's rule).
var endpointSchemes = []string{"ssh://", "tcp://", "unix://"}

// CheckEndpoint refuses an endpoint the deploy could not dial.
func CheckEndpoint(flag, endpoint string) error {
	for _, s := range endpointSchemes {
		if strings.HasPrefix(endpoint, s) && len(endpoint) > len(s) {
			if strings.ContainsAny(endpoint, " \t\n\"'") {
				return fmt.Errorf("%s %q: no spaces or quotes", flag, endpoint)
			}
			return nil
		}
	}
	return fmt.Errorf("%s %q: want ssh://user@host (or tcp://host:port, unix:///path)", flag, endpoint)
}
