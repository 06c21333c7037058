package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/compose/convert"
	"github.com/docker/cli/cli/compose/loader"
	"github.com/docker/cli/cli/compose/schema"
	"github.com/docker/cli/cli/compose/template"
	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

// Stack is the stack files of an environment, loaded the way docker stack
// deploy loads them (the docker CLI's own loader), before any lookup in
// the Swarm.
type Stack struct {
	Env       *envfile.Environment
	Config    *composetypes.Config
	Variables map[string]string // what the files were interpolated with
	Warnings  []string
}

// Release is the app image a deploy installs.
type Release struct {
	Repository string // the environment's image repository
	Tag        string // the version shown: a release tag, a commit tag...
	Digest     string // sha256:...; never empty in a deploy
}

// Ref is repository:tag@digest (repository@digest without a tag): pinned by
// digest, with the tag kept for people.
func (r Release) Ref() string {
	ref := r.Repository
	if r.Tag != "" {
		ref += ":" + r.Tag
	}
	if r.Digest != "" {
		ref += "@" + r.Digest
	}
	return ref
}

// loadStack interpolates env's stack files with its variables and the
// release, and loads them. getenv supplies ${NAME} in the environments
// file's variables, nothing else: the files see only what is listed.
func loadStack(env *envfile.Environment, rel Release, getenv func(string) (string, bool)) (*Stack, error) {
	vars := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(env.Variables)) {
		v, err := template.Substitute(env.Variables[k], template.Mapping(getenv))
		if err != nil {
			return nil, fmt.Errorf("environment %s: variables.%s: %w", env.Name, k, err)
		}
		vars[k] = v
	}
	named, err := reference.ParseNormalizedNamed(rel.Repository)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", rel.Repository, err)
	}
	vars["REGISTRY"] = reference.Domain(named)
	vars["IMAGE_NAME"] = reference.Path(named)
	// The files name the image ${REGISTRY}/${IMAGE_NAME}:${IMAGE_TAG}: the
	// tag carries the digest too, so what Swarm runs is pinned.
	vars["IMAGE_TAG"] = strings.TrimPrefix(strings.TrimPrefix(rel.Ref(), rel.Repository), ":")
	if rel.Tag == "" && rel.Digest != "" {
		// A digest alone (-image=repo@sha256:..., no version label to name
		// it): the files put a tag before the digest, so give them one.
		vars["IMAGE_TAG"] = "untagged@" + rel.Digest
	}
	vars["APP_ENV"] = env.AppEnv

	details := composetypes.ConfigDetails{Environment: vars}
	var dicts []map[string]any
	for i, f := range env.Files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("stack file: %w", err)
		}
		dict, err := loader.ParseYAML(data)
		if err != nil {
			return nil, fmt.Errorf("stack file %s: %w", f, err)
		}
		if i == 0 {
			details.WorkingDir = filepath.Dir(f)
			details.Version = schema.Version(dict)
		}
		details.ConfigFiles = append(details.ConfigFiles, composetypes.ConfigFile{Filename: f, Config: dict})
		dicts = append(dicts, dict)
	}
	cfg, err := loader.Load(details)
	if err != nil {
		var fpe *loader.ForbiddenPropertiesError
		if errors.As(err, &fpe) {
			return nil, fmt.Errorf("stack files %s: options Swarm does not support: %v", strings.Join(env.Files, ", "), slices.Sorted(maps.Keys(fpe.Properties)))
		}
		return nil, fmt.Errorf("stack files %s: %w", strings.Join(env.Files, ", "), err)
	}
	st := &Stack{Env: env, Config: cfg, Variables: vars}
	if u := loader.GetUnsupportedProperties(dicts...); len(u) > 0 {
		st.Warnings = append(st.Warnings, "ignored by Swarm: "+strings.Join(u, ", "))
	}
	for _, s := range cfg.Services {
		if _, err := reference.ParseAnyReference(s.Image); err != nil || s.Image == "" {
			return nil, fmt.Errorf("stack files: services.%s.image: %q is not an image reference", s.Name, s.Image)
		}
	}
	// External secrets keep their logical names here (database_url): once
	// the live state is read, a deploy binds each to its newest version,
	// <stack>_database_url_v<N> (bindSecrets), so two environments can
	// share a Swarm and a new value is a new version.
	return st, nil
}

// Desired is the state the stack files ask for, as Swarm objects.
type Desired struct {
	Stack            string
	Services         map[string]swarm.ServiceSpec // by service name without the stack prefix
	Networks         map[string]client.NetworkCreateOptions
	ExternalNetworks []string // must exist: preflight checks
	Configs          []swarm.ConfigSpec
}

// objectLister is what the converter asks: the IDs of secrets and configs.
type objectLister interface {
	SecretList(ctx context.Context, options client.SecretListOptions) (client.SecretListResult, error)
	ConfigList(ctx context.Context, options client.ConfigListOptions) (client.ConfigListResult, error)
}

// listerClient gives the CLI's converter, which wants a whole Engine
// client, the two calls it makes; any other would panic on the nil
// embedded client, which would be a change in the converter worth seeing.
type listerClient struct {
	client.APIClient
	objectLister
}

func (c listerClient) SecretList(ctx context.Context, o client.SecretListOptions) (client.SecretListResult, error) {
	return c.objectLister.SecretList(ctx, o)
}

func (c listerClient) ConfigList(ctx context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	return c.objectLister.ConfigList(ctx, o)
}

// Convert turns the loaded stack into service specs exactly as docker stack
// deploy does (the CLI's convert package), with images as given: resolve
// them before applying. api is only asked for the IDs of the secrets and
// configs the services reference. Configs defined from files get a name
// with a hash of their content, since Swarm configs are immutable.
func (st *Stack) Convert(ctx context.Context, api objectLister) (*Desired, error) {
	ns := convert.NewNamespace(st.Env.Stack)
	cfg := *st.Config
	cfg.Configs = maps.Clone(cfg.Configs)
	var configs []swarm.ConfigSpec
	for _, k := range slices.Sorted(maps.Keys(cfg.Configs)) {
		c := cfg.Configs[k]
		if c.External.External {
			continue
		}
		specs, err := convert.Configs(ns, map[string]composetypes.ConfigObjConfig{k: c})
		if err != nil {
			return nil, fmt.Errorf("configs.%s: %w", k, err)
		}
		spec := specs[0]
		sum := sha256.Sum256(spec.Data)
		spec.Name += "_" + hex.EncodeToString(sum[:])[:10]
		c.Name = spec.Name
		c.External.External = true // the object exists by the time services reference it
		cfg.Configs[k] = c
		configs = append(configs, spec)
	}
	used := map[string]struct{}{}
	for _, s := range cfg.Services {
		if len(s.Networks) == 0 {
			used["default"] = struct{}{}
		}
		for n := range s.Networks {
			used[n] = struct{}{}
		}
	}
	networks, external := convert.Networks(ns, cfg.Networks, used)
	for name, n := range networks {
		if n.Driver == "" {
			n.Driver = "overlay" // what docker stack deploy uses
			networks[name] = n
		}
	}
	services, err := convert.Services(ctx, ns, &cfg, listerClient{objectLister: api})
	if err != nil {
		return nil, err
	}
	slices.Sort(external)
	return &Desired{Stack: st.Env.Stack, Services: services, Networks: networks, ExternalNetworks: external, Configs: configs}, nil
}
