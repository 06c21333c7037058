// Package stack reads the Compose files the way Compose and Swarm do, and
// holds the rules a production stack file keeps. mage lint asks it about the
// committed files; a deploy preflight can ask it about the stack it is about
// to deploy.
package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
)

// Load reads files in order, each one overriding the ones before, with
// variables taken from env only: never from the process environment or a
// .env file, so the result does not depend on the shell it runs in. name is
// the project (stack) name.
func Load(ctx context.Context, name string, env map[string]string, files ...string) (*types.Project, error) {
	if len(files) == 0 {
		return nil, errors.New("no compose file given")
	}
	dir, err := filepath.Abs(filepath.Dir(files[0]))
	if err != nil {
		return nil, err
	}
	details := types.ConfigDetails{WorkingDir: dir, Environment: types.Mapping(maps.Clone(env))}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("compose file: %w", err)
		}
		// The production file keeps `version` for docker stack deploy in
		// Docker CLIs before 23, which refuse a file without it; compose-go
		// would log a warning that it is obsolete. Blanking the line keeps
		// line numbers.
		b = topLevelVersion.ReplaceAll(b, nil)
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f, Content: b})
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		o.ResolvePaths = false
	})
	if err != nil {
		return nil, fmt.Errorf("compose files %s: %w", strings.Join(files, ", "), err)
	}
	return p, nil
}

var topLevelVersion = regexp.MustCompile(`(?m)^version:.*$`)

// CheckProduction returns every way p breaks the rules of a production
// stack, joined, each naming the service and key at fault. It never quotes
// an environment value: one may be a secret.
func CheckProduction(p *types.Project) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		at := "services." + name
		if err := pinned(s.Image); err != nil {
			fail("%s.image: %w", at, err)
		}
		if s.HealthCheck != nil && s.HealthCheck.Disable {
			fail("%s.healthcheck: disabled; Swarm needs it to tell a failed update and roll it back", at)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
			if v := s.Environment[k]; v != nil && secretLooking(k, *v) {
				fail("%s.environment.%s: holds a secret in plain text (visible in docker inspect); use a Docker secret: %s_FILE=/run/secrets/...", at, k, k)
			}
		}
		d := s.Deploy
		if d == nil {
			continue
		}
		if d.EndpointMode == "dnsrr" {
			fail("%s.deploy.endpoint_mode: dnsrr bypasses the routing mesh that published ports need; keep it to test override files", at)
		}
		if d.Replicas != nil && *d.Replicas > 1 {
			if d.UpdateConfig == nil || d.UpdateConfig.FailureAction != "rollback" {
				action := "pause (the default)"
				if d.UpdateConfig != nil && d.UpdateConfig.FailureAction != "" {
					action = d.UpdateConfig.FailureAction
				}
				fail("%s.deploy.update_config.failure_action: %s, want rollback: a failed update must undo itself", at, action)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		if !bool(p.Secrets[name].External) {
			fail("secrets.%s: not external; production secrets are made once with docker secret create, never read from a file or the environment at deploy time", name)
		}
	}
	return errors.Join(errs...)
}

// pinned says whether image names one release: a tag other than latest, or
// a digest.
func pinned(image string) error {
	if image == "" {
		return errors.New("missing: a production service runs a released image")
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("%q: %w", image, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil
	}
	t, ok := ref.(reference.Tagged)
	switch {
	case !ok:
		return fmt.Errorf("%q has no tag, which means latest; production runs a release tag or digest", image)
	case t.Tag() == "latest":
		return fmt.Errorf("%q: production never runs latest; deploy a release tag or digest", image)
	}
	return nil
}

// secretSuffixes end the names of variables that hold secrets by
// convention; their _FILE forms point at a secret and are fine.
var secretSuffixes = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY"}

// secretLooking says whether the variable k=v carries a secret: by its name,
// or because v is a URL with a password in it (a database URL).
func secretLooking(k, v string) bool {
	if v == "" || strings.HasSuffix(k, "_FILE") {
		return false
	}
	upper := strings.ToUpper(k)
	for _, s := range secretSuffixes {
		if strings.HasSuffix(upper, s) {
			return true
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return false
	}
	_, hasPassword := u.User.Password()
	return hasPassword
}

// Lint checks the committed files: the local one loads, and the production
// one keeps the production rules. Unset, IMAGE_TAG must stop a deploy
// (${IMAGE_TAG:?...}) or fall back to something the rules accept, never
// latest; when it stops the load, the file is checked with a stand-in
// release tag instead (lint checks the file, not a release).
func Lint(ctx context.Context, name, localFile, prodFile string) error {
	if _, err := Load(ctx, name, nil, localFile); err != nil {
		return err
	}
	p, err := Load(ctx, name, nil, prodFile)
	if err != nil {
		if p, err = Load(ctx, name, map[string]string{"IMAGE_TAG": "v0.0.0"}, prodFile); err != nil {
			return err
		}
	}
	if err := CheckProduction(p); err != nil {
		return fmt.Errorf("%s:\n%w", prodFile, err)
	}
	return nil
}
