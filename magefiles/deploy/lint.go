package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	composetypes "github.com/docker/cli/cli/compose/types"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/proxy"
	"github.com/fractionate/service-template/magefiles/stack"
)

// Lint checks the environments file under root as a deploy would read
// it: every environment's stack files load with the docker CLI's loader
// (with a stand-in release), their names fit Swarm's rules, a protected
// environment's keep the production rules, and the proxy's files
// (deploy/proxy.yml with deploy/proxy-acme.yml, and deploy/proxy-pebble.yml
// for a pebble CA, or with deploy/proxy-secrets.yml) load as
// deploy:proxy loads them and keep the proxy's rules. Variables that read
// the deployer's environment get their defaults.
func Lint(ctx context.Context, root string) error {
	file, err := envfile.Load(filepath.Join(root, envfile.DefaultPath), root)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range file.Names() {
		env := file.Environments[name]
		rel := Release{Repository: env.Image, Tag: "v0.0.0"}
		st, err := loadStack(env, rel, func(string) (string, bool) { return "", false })
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: environment %s: %w", envfile.DefaultPath, name, err))
			continue
		}
		if sm := env.Smoke; sm != nil && sm.Service != "" && !slices.ContainsFunc(st.Config.Services, func(s composetypes.ServiceConfig) bool { return s.Name == sm.Service }) {
			errs = append(errs, fmt.Errorf("%s: environments.%s.smoke.service: the stack files have no service %q", envfile.DefaultPath, name, sm.Service))
		}
		for _, s := range st.Config.Services {
			if p := nameProblem("service", env.Stack+"_"+s.Name); p != "" {
				errs = append(errs, fmt.Errorf("%s: environment %s: %s", envfile.DefaultPath, name, p))
			}
		}
		for logical, sc := range st.Config.Secrets {
			if sc.External.External && sc.Name == logical {
				// The first version's name; later ones are longer by a digit
				// now and then: secrets:set checks each.
				if p := nameProblem("secret", secretName(env.Stack, logical, 1)); p != "" {
					errs = append(errs, fmt.Errorf("%s: environment %s: %s", envfile.DefaultPath, name, p))
				}
			}
		}
		if env.Proxy != nil {
			if err := lintProxy(env, root); err != nil {
				errs = append(errs, fmt.Errorf("%s: environment %s: the proxy: %w", envfile.DefaultPath, name, err))
			}
		}
		if env.Protected {
			p, err := stack.Load(ctx, env.Stack, st.Variables, env.Files...)
			if err == nil {
				err = stack.CheckProduction(p, env.Image)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: environment %s: the production rules:\n%w", envfile.DefaultPath, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// lintProxy loads env's proxy files as deploy:proxy would and holds them
// to the proxy's rules; a pebble CA's files are made in a temporary
// directory.
func lintProxy(env *envfile.Environment, root string) error {
	dir := ""
	if env.Proxy.CA == envfile.CAPebble {
		tmp, err := os.MkdirTemp("", "lint-pebble-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := proxy.PebbleFiles(tmp); err != nil {
			return err
		}
		dir = tmp
	}
	s := &Session{Env: proxyEnvironment(env, root, dir), Lookup: func(string) (string, bool) { return "", false }}
	if _, err := proxyImage(s.Env, s.Lookup); err != nil {
		return err
	}
	var cs Checks
	s.checkProxyFiles(&cs)
	return cs.Err()
}
