package deploy

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// StackLabel is the label docker stack deploy puts on every object of a
// stack; services, networks and configs made here carry it too, so the
// docker CLI's stack commands see the same stack.
const StackLabel = "com.docker.stack.namespace"

// Live is what runs of a stack now.
type Live struct {
	Services     map[string]swarm.Service // by name without the stack prefix
	NetworkNames map[string]string        // every network's ID to its name
	Networks     map[string]bool          // names of networks that exist
	Secrets      map[string]swarm.Secret  // by name
	Configs      map[string]bool          // names of configs that exist
}

// liveAPI is what reading a stack's live state calls.
type liveAPI interface {
	serviceLister
	networkListerAPI
	SecretList(ctx context.Context, options client.SecretListOptions) (client.SecretListResult, error)
	ConfigList(ctx context.Context, options client.ConfigListOptions) (client.ConfigListResult, error)
}

// readLive reads the stack's services and the networks, secrets and
// configs its specs may refer to.
func readLive(ctx context.Context, api liveAPI, stack string) (*Live, error) {
	l := &Live{Services: map[string]swarm.Service{}, NetworkNames: map[string]string{}, Networks: map[string]bool{}, Secrets: map[string]swarm.Secret{}, Configs: map[string]bool{}}
	ss, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: client.Filters{}.Add("label", StackLabel+"="+stack)})
	if err != nil {
		return nil, fmt.Errorf("list the services of stack %s: %w", stack, err)
	}
	for _, s := range ss.Items {
		l.Services[strings.TrimPrefix(s.Spec.Name, stack+"_")] = s
	}
	ns, err := api.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		l.NetworkNames[n.ID] = n.Name
		l.Networks[n.Name] = true
	}
	secrets, err := api.SecretList(ctx, client.SecretListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	for _, s := range secrets.Items {
		l.Secrets[s.Spec.Name] = s
	}
	configs, err := api.ConfigList(ctx, client.ConfigListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list configs: %w", err)
	}
	for _, c := range configs.Items {
		l.Configs[c.Spec.Name] = true
	}
	return l, nil
}

// Spec returns the live spec of a service in the form the stack files
// produce, so the two compare: network IDs become names.
func (l *Live) Spec(name string) swarm.ServiceSpec {
	spec := l.Services[name].Spec
	return normalize(spec, l.NetworkNames)
}

// normalize turns a live spec into the form the stack files produce: with
// Swarm's defaults, network names for IDs, and without the label that says
// which change created the service.
func normalize(spec swarm.ServiceSpec, networkNames map[string]string) swarm.ServiceSpec {
	spec = withDefaults(spec)
	if _, ok := spec.Labels[ownerLabel]; ok {
		spec.Labels = maps.Clone(spec.Labels)
		delete(spec.Labels, ownerLabel)
	}
	nets := make([]swarm.NetworkAttachmentConfig, len(spec.TaskTemplate.Networks))
	for i, n := range spec.TaskTemplate.Networks {
		if name, ok := networkNames[n.Target]; ok {
			n.Target = name
		}
		nets[i] = n
	}
	if len(nets) > 0 {
		spec.TaskTemplate.Networks = nets
	}
	return spec
}

// The values Swarm stores for settings a spec leaves out. A desired spec
// gets them before it is compared with a live one, or every deploy would
// see changes that are not there.
var (
	defaultUpdate = swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionPause, Monitor: 5 * time.Second, Order: swarm.UpdateOrderStopFirst}
)

// withDefaults returns spec with Swarm's defaults filled in where it
// leaves a setting out.
func withDefaults(spec swarm.ServiceSpec) swarm.ServiceSpec {
	if spec.TaskTemplate.Runtime == "" && spec.TaskTemplate.ContainerSpec != nil {
		spec.TaskTemplate.Runtime = swarm.RuntimeContainer
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil && cs.Isolation == "" {
		c := *cs
		c.Isolation = container.IsolationDefault
		spec.TaskTemplate.ContainerSpec = &c
	}
	ep := swarm.EndpointSpec{}
	if spec.EndpointSpec != nil {
		ep = *spec.EndpointSpec
	}
	if ep.Mode == "" {
		ep.Mode = swarm.ResolutionModeVIP
	}
	ports := make([]swarm.PortConfig, len(ep.Ports))
	for i, p := range ep.Ports {
		if p.Protocol == "" {
			p.Protocol = network.TCP
		}
		if p.PublishMode == "" {
			p.PublishMode = swarm.PortConfigPublishModeIngress
		}
		ports[i] = p
	}
	if len(ports) > 0 {
		ep.Ports = ports
	}
	spec.EndpointSpec = &ep
	if rp := spec.TaskTemplate.RestartPolicy; rp != nil && rp.MaxAttempts == nil {
		// Swarm stores "no limit" as 0.
		r, unlimited := *rp, uint64(0)
		r.MaxAttempts = &unlimited
		spec.TaskTemplate.RestartPolicy = &r
	}
	spec.UpdateConfig = updateDefaults(spec.UpdateConfig)
	spec.RollbackConfig = updateDefaults(spec.RollbackConfig)
	return spec
}

func updateDefaults(c *swarm.UpdateConfig) *swarm.UpdateConfig {
	if c == nil {
		d := defaultUpdate
		return &d
	}
	u := *c
	if u.FailureAction == "" {
		u.FailureAction = defaultUpdate.FailureAction
	}
	if u.Monitor == 0 {
		u.Monitor = defaultUpdate.Monitor
	}
	if u.Order == "" {
		u.Order = defaultUpdate.Order
	}
	return &u
}

// noService says that env's stack has no service name, and what it has
// instead: nothing at all is a stack never deployed (or removed).
func noService(env *envfile.Environment, name string, have []string) error {
	if len(have) == 0 {
		return fmt.Errorf("stack %s has no service %q: it runs nothing (deploy it first: go tool mage deploy:to %s)", env.Stack, name, env.Name)
	}
	return fmt.Errorf("stack %s has no service %q; it has: %s", env.Stack, name, strings.Join(have, ", "))
}
