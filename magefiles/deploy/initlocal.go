package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// DefaultRegistryImage is the registry deploy:init starts; REGISTRY_IMAGE
// names another (where it cannot be pulled, CI builds one).
const DefaultRegistryImage = "registry:2"

// InitOptions tune Init.
type InitOptions struct {
	RegistryImage string // DefaultRegistryImage when empty
	Out           io.Writer
	DryRun        bool // say what would be done, do nothing
	// Endpoint is the connection's: Init refuses any but this machine's
	// engine, as DEPLOY_HOST may point elsewhere.
	Endpoint endpoint.Endpoint
}

// initAPI is what deploy:init calls.
type initAPI interface {
	secretAPI
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	SwarmInit(ctx context.Context, options client.SwarmInitOptions) (client.SwarmInitResult, error)
	ContainerInspect(ctx context.Context, container string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerStart(ctx context.Context, container string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImagePull(ctx context.Context, ref string, options client.ImagePullOptions) (client.ImagePullResponse, error)
}

// Init prepares a local environment on this machine's engine: it makes
// the engine a single-node Swarm when it is not in one (the only place that
// ever happens), starts the environment's registry on 127.0.0.1 when none
// answers there, and creates the init_secrets that are missing. Each step
// is skipped when its result is already there.
func Init(ctx context.Context, api initAPI, env *envfile.Environment, o InitOptions) error {
	if env.Protected || env.Endpoint != "" || env.Context != "" {
		return Refused(fmt.Errorf("deploy:init prepares a local environment on this machine's engine; %s is protected or has its own endpoint: its Swarm, registry and secrets are managed by its operators", env.Name))
	}
	if !o.Endpoint.Local() {
		return Refused(fmt.Errorf("deploy:init prepares %s on this machine's engine, but %s points the connection at %s: unset %s; deploy:init never prepares a remote Swarm", env.Name, o.Endpoint.Source, o.Endpoint, o.Endpoint.Source))
	}
	out := o.Out
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("the Docker engine does not answer: %w", err)
	}
	switch info.Info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateInactive:
		if o.DryRun {
			fmt.Fprintln(out, "Swarm: would make this engine a single-node Swarm (advertised on 127.0.0.1)")
			if env.Registry != nil && !registryAnswers(ctx, env.Registry.Port) {
				fmt.Fprintf(out, "Registry: would start %s as container %s on 127.0.0.1:%d\n", cmpOr(o.RegistryImage, DefaultRegistryImage), registryContainer(env), env.Registry.Port)
			}
			order, err := envfile.InitOrder(env.InitSecrets)
			if err != nil {
				return err
			}
			for _, name := range order {
				fmt.Fprintf(out, "Secret %s: version 1 would be created\n", name)
			}
			fmt.Fprintln(out, "Dry run: nothing was changed.")
			return nil
		}
		fmt.Fprintln(out, "Swarm: making this engine a single-node Swarm (advertised on 127.0.0.1; undo with docker swarm leave --force)")
		if _, err := api.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
			return fmt.Errorf("swarm init: %w", err)
		}
	case swarm.LocalNodeStateActive:
		if !info.Info.Swarm.ControlAvailable {
			return fmt.Errorf("this engine is a Swarm worker; run deploys against a manager")
		}
		fmt.Fprintln(out, "Swarm: this engine is a manager already")
	default:
		return fmt.Errorf("this engine's Swarm state is %s; wait for it to settle or leave it", info.Info.Swarm.LocalNodeState)
	}
	if env.Registry != nil {
		if err := ensureRegistry(ctx, api, env, cmpOr(o.RegistryImage, DefaultRegistryImage), out, o.DryRun); err != nil {
			return err
		}
	}
	if err := ensureSecrets(ctx, api, env, out, o.DryRun); err != nil {
		return err
	}
	if o.DryRun {
		fmt.Fprintln(out, "Dry run: nothing was changed.")
	}
	return nil
}

// registryContainer names the container of an environment's registry.
func registryContainer(env *envfile.Environment) string { return env.Stack + "-registry" }

func registryAnswers(ctx context.Context, port int) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
}

func ensureRegistry(ctx context.Context, api initAPI, env *envfile.Environment, image string, out io.Writer, dryRun bool) error {
	port := env.Registry.Port
	if registryAnswers(ctx, port) {
		fmt.Fprintf(out, "Registry: one answers on 127.0.0.1:%d\n", port)
		return nil
	}
	if dryRun {
		fmt.Fprintf(out, "Registry: would start %s as container %s on 127.0.0.1:%d\n", image, registryContainer(env), port)
		return nil
	}
	name := registryContainer(env)
	if _, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err == nil {
		fmt.Fprintf(out, "Registry: starting container %s\n", name)
		if _, err := api.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start registry container %s: %w", name, err)
		}
	} else {
		if _, err := api.ImageInspect(ctx, image); err != nil {
			fmt.Fprintf(out, "Registry: pulling %s\n", image)
			rc, err := api.ImagePull(ctx, image, client.ImagePullOptions{})
			if err != nil {
				return fmt.Errorf("pull the registry image %s (REGISTRY_IMAGE names another): %w", image, err)
			}
			err = rc.Wait(ctx)
			if err != nil {
				return fmt.Errorf("pull the registry image %s (REGISTRY_IMAGE names another): %w", image, err)
			}
		}
		fmt.Fprintf(out, "Registry: starting %s as container %s on 127.0.0.1:%d\n", image, name, port)
		_, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:   name,
			Config: &container.Config{Image: image, Labels: map[string]string{ledger.LabelKind: "registry", ledger.LabelStack: env.Stack}},
			HostConfig: &container.HostConfig{
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
				PortBindings: network.PortMap{
					network.MustParsePort("5000/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}},
				},
				// A named volume: the images outlive the container.
				Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name + "-data", Target: "/var/lib/registry"}},
			},
		})
		if err != nil {
			return fmt.Errorf("create registry container %s: %w", name, err)
		}
		if _, err := api.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start registry container %s: %w", name, err)
		}
	}
	for range 60 {
		if registryAnswers(ctx, port) {
			fmt.Fprintf(out, "Registry: answers on 127.0.0.1:%d\n", port)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("the registry container %s does not answer on 127.0.0.1:%d (docker logs %s says why)", name, port, name)
}

// ensureSecrets creates version 1 of each init_secret that has no version
// yet, those another embeds first. It refuses, before creating any, one
// that needs the value of an existing secret (which cannot be read back)
// and one missing while an existing secret embeds its value (a new value
// would not match). Values are generated here and go nowhere else: not to
// the output, not to a file.
func ensureSecrets(ctx context.Context, api secretAPI, env *envfile.Environment, out io.Writer, dryRun bool) error {
	if len(env.InitSecrets) == 0 {
		return nil
	}
	order, err := envfile.InitOrder(env.InitSecrets)
	if err != nil {
		return err
	}
	versions, err := listVersions(ctx, api, env.Stack)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range order {
		cur, exists := versions.Newest(name)
		for _, ref := range envfile.InitRefs(env.InitSecrets[name]) {
			rv, refExists := versions.Newest(ref)
			switch {
			case exists && !refExists:
				errs = append(errs, fmt.Errorf("init_secrets.%s has no version while %s (%s) embeds its value: a generated one would not match; give %s the value %s holds with go tool mage secrets:set %s %s",
					ref, name, cur.Name, ref, name, env.Name, ref))
			case !exists && refExists:
				errs = append(errs, fmt.Errorf("init_secrets.%s needs the value of %s, whose version %s exists and cannot be read back: give %s yourself with go tool mage secrets:set %s %s",
					name, ref, rv.Name, name, env.Name, name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	values := map[string]string{}
	for _, name := range order {
		if cur, ok := versions.Newest(name); ok {
			fmt.Fprintf(out, "Secret %s: exists (%s)\n", name, cur.Name)
			continue
		}
		if dryRun {
			fmt.Fprintf(out, "Secret %s: version 1 would be created\n", name)
			continue
		}
		// Every secret this one embeds was made above: the checks refuse
		// an existing one.
		v := envfile.RenderInitSecret(env.InitSecrets[name], values, func() string {
			return rand.Text() + rand.Text() // 52 characters, 260 random bits
		})
		values[name] = v
		made, err := SetSecret(ctx, api, env.Stack, name, secret.New(v))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Secret %s: created %s (a generated value; it is not shown)\n", name, made.Name)
	}
	return nil
}
