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
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/fractionate/service-template/magefiles/release"
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
		return nil, fmt.Errorf("compose file %s: %w", files[0], err)
	}
	details := types.ConfigDetails{WorkingDir: dir, Environment: types.Mapping(maps.Clone(env))}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("compose file: %w", err)
		}
		// The production file keeps `version: "3.x"` for docker stack deploy
		// in Docker CLIs before 23, which refuse a file without it;
		// compose-go would log a warning that it is obsolete. Blanking the
		// line keeps line numbers. Other versions stay, and are warned of.
		b = topLevelVersion.ReplaceAll(b, nil)
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: f, Content: b})
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		// docker stack deploy knows no profiles: it deploys every service.
		o.Profiles = []string{"*"}
	})
	if err != nil {
		return nil, fmt.Errorf("compose files %s: %w", strings.Join(files, ", "), err)
	}
	return p, nil
}

var topLevelVersion = regexp.MustCompile(`(?m)^version:[ \t]*["']?3(\.\d+)?["']?[ \t]*(#.*)?$`)

// CheckProduction returns every way p breaks the rules of a production
// stack, joined, each naming the service and key at fault. ours is the
// repository of this project's own image (ghcr.io/acme/api), held to a
// stricter rule than third-party images; "" when the stack has none. It
// never quotes an environment value: one may be a secret.
func CheckProduction(p *types.Project, ours string) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		at := "services." + name
		if err := pinned(s.Image, ours); err != nil {
			fail("%s.image: %w", at, err)
		}
		if hc := s.HealthCheck; hc != nil && (hc.Disable || (len(hc.Test) > 0 && hc.Test[0] == "NONE")) {
			fail("%s.healthcheck: disabled; Swarm needs it to tell a failed update and roll it back", at)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
			if secretLooking(k, s.Environment[k]) {
				fail("%s.environment.%s: a secret in the service's environment is visible to docker inspect; use a Docker secret and %s_FILE=/run/secrets/...", at, k, k)
			}
		}
		action := "pause (the default)"
		if d := s.Deploy; d != nil {
			if d.EndpointMode == "dnsrr" {
				fail("%s.deploy.endpoint_mode: dnsrr cannot serve ports published through the routing mesh; it belongs in test override files", at)
			}
			if d.UpdateConfig != nil && d.UpdateConfig.FailureAction != "" {
				action = d.UpdateConfig.FailureAction
			}
		}
		if action != "rollback" {
			fail("%s.deploy.update_config.failure_action: %s, want rollback: a failed update must undo itself", at, action)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		if !bool(p.Secrets[name].External) {
			fail("secrets.%s: not external; production secrets are made once with docker secret create, never read from a file or the environment at deploy time", name)
		}
	}
	return errors.Join(errs...)
}

// pinned says whether image is fixed by the file. A digest always is. Our
// own image otherwise needs a release tag (release.IsReleaseTag, the one
// rule for a version): a branch (main), a commit (abc1234, abc1234-dirty) or a
// moving vX.Y tag is what the tag scheme gives builds that were never
// released. Another vendor's image needs a tag other than latest (what
// postgres:16-alpine means is the vendor's business).
func pinned(image, ours string) error {
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
	t, tagged := ref.(reference.Tagged)
	if ours != "" && sameRepository(ref, ours) {
		const instead = "deploy a release tag (vX.Y.Z, made by go tool mage release:*) or a digest"
		switch {
		case !tagged:
			return fmt.Errorf("%q has no tag, which means latest; %s", image, instead)
		case t.Tag() == "latest":
			return fmt.Errorf("%q: production never runs latest; %s", image, instead)
		}
		if !release.IsReleaseTag(t.Tag()) {
			return fmt.Errorf("%q: %q is not a release tag of this project's image (a branch, commit or vX.Y tag moves or was never released); %s", image, t.Tag(), instead)
		}
		return nil
	}
	switch {
	case !tagged:
		return fmt.Errorf("%q has no tag, which means latest; pin a version tag (postgres:16-alpine) or a digest", image)
	case t.Tag() == "latest":
		return fmt.Errorf("%q: production never runs latest; pin a version tag (postgres:16-alpine) or a digest", image)
	}
	return nil
}

// sameRepository says whether ref names the repository ours, both
// normalized (acme/api is docker.io/acme/api).
func sameRepository(ref reference.Named, ours string) bool {
	o, err := reference.ParseNormalizedNamed(ours)
	return err == nil && o.Name() == ref.Name()
}

// secretNames end the names of variables that hold secrets by convention.
// Whatever their value (a literal, or ${VAR} filled in from the deployer's
// shell), it lands in the service spec; their _FILE forms point at a
// secret and are fine.
var secretNames = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY", "DATABASE_URL", "_DSN"}

// urlWithPassword matches scheme://user:password@...; by hand, because
// url.Parse gives up on the many generated passwords that hold / ? or #.
var urlWithPassword = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*:[^@\s]+@`)

// secretLooking says whether the variable k (value v, nil when the file
// passes it through from the deployer's shell) carries a secret: by its
// name, or because v is a URL with a password in it.
func secretLooking(k string, v *string) bool {
	upper := strings.ToUpper(k)
	if strings.HasSuffix(upper, "_FILE") {
		return false
	}
	for _, s := range secretNames {
		if strings.HasSuffix(upper, s) {
			return true
		}
	}
	return v != nil && urlWithPassword.MatchString(*v)
}

// The committed files, relative to the repository root, and the stack
// they make.
const (
	LocalFile      = "docker-compose.yml"
	ProductionFile = "docker-compose.prod.yml"
	Name           = "service-template"
	// AppService is the production file's service that runs this
	// project's own image; its repository is the one CheckProduction
	// holds to release tags.
	AppService = "app"
)

// standInRelease is the IMAGE_TAG lint checks the production file with when
// the file needs one: lint checks the file, not a release.
const standInRelease = "v0.0.0"

// Lint checks the committed files under dir: the local one loads, and the
// production one keeps the production rules. Unset, IMAGE_TAG must stop a
// deploy (${IMAGE_TAG:?...}) or fall back to something the rules accept,
// never latest; when it stops the load, the file is checked with a
// stand-in release tag instead. Our own repository is the one the file
// names for the app service under the stand-in tag, so it comes from the
// file's own defaults (${REGISTRY:-...}/${IMAGE_NAME:-...}).
func Lint(ctx context.Context, dir string) error {
	local, prod := filepath.Join(dir, LocalFile), filepath.Join(dir, ProductionFile)
	if _, err := Load(ctx, Name, nil, local); err != nil {
		return err
	}
	standIn, err := Load(ctx, Name, map[string]string{"IMAGE_TAG": standInRelease}, prod)
	if err != nil {
		return err
	}
	ours, err := OwnRepository(standIn)
	if err != nil {
		return fmt.Errorf("%s: %w", prod, err)
	}
	p, err := Load(ctx, Name, nil, prod)
	if err != nil && strings.Contains(err.Error(), "IMAGE_TAG") {
		p, err = standIn, nil
	}
	if err != nil {
		return err
	}
	if err := CheckProduction(p, ours); err != nil {
		return fmt.Errorf("%s:\n%w", prod, err)
	}
	return nil
}

// OwnRepository is the repository of the app service's image in p
// (ghcr.io/acme/api): this project's own image.
func OwnRepository(p *types.Project) (string, error) {
	s, ok := p.Services[AppService]
	if !ok || s.Image == "" {
		return "", fmt.Errorf("services.%s.image: missing; the production file runs this project's image as %s", AppService, AppService)
	}
	ref, err := reference.ParseNormalizedNamed(s.Image)
	if err != nil {
		return "", fmt.Errorf("services.%s.image: %q: %w", AppService, s.Image, err)
	}
	return ref.Name(), nil
}
