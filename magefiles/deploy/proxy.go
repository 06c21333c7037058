package deploy

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/compose/template"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/proxy"
	"github.com/fractionate/service-template/magefiles/stack"
)

// ProxyOptions choose how deploy:proxy runs.
type ProxyOptions struct {
	Root   string // the repository root, where deploy/proxy.yml is
	DryRun bool
	// Cache is where the files a pebble CA needs are kept (made once):
	// the service-template cache directory when empty.
	Cache string
}

// proxyStandIn is the release the proxy's files are read with: they do
// not use it (Traefik's image is their own).
const proxyStandIn = "localhost/proxy-stand-in"

// Proxy deploys the front proxy of the environment's Swarm (deploy/proxy.yml
// with deploy/proxy-acme.yml, plus deploy/proxy-pebble.yml with a pebble
// CA; or with deploy/proxy-secrets.yml) as a stack of its own, as
// a change like every other: preflight, plan, apply, converge, restore,
// record, under the proxy stack's lock. Its release is Traefik's image;
// there is no migration and no smoke check of the app: once converged, a
// job on traefik-public asks Traefik's /ping, and on this machine's engine
// the HTTPS port is asked too. It makes traefik-public when missing and,
// with ACME, labels the node that keeps the certificates; with certificates
// from secrets, it binds the newest version of each and judges the pair
// (certificateCheck) before anything changes.
func (s *Session) Proxy(ctx context.Context, o ProxyOptions) error {
	p := s.Env.Proxy
	if p == nil {
		return Refused(fmt.Errorf("environment %s has no proxy: section in %s (see the local environment's for an example)", s.Env.Name, envfile.DefaultPath))
	}
	pebbleDir := ""
	if p.CA == envfile.CAPebble {
		pebbleDir = filepath.Join(cmp.Or(o.Cache, cacheDir()), "pebble", s.Env.Name)
	}
	pe := proxyEnvironment(s.Env, o.Root, pebbleDir)
	rel, fileErr := proxyImage(pe, s.Lookup)
	pe.Image = rel.Repository

	ps := *s
	ps.Env = pe
	nodes := &plannedLabel{Engine: s.API}
	ps.API = nodes
	var traefik, pebble swarm.ServiceSpec
	ps.AfterConverge = func(ctx context.Context) error {
		return ps.checkProxy(ctx, traefik, pebble, pebbleDir)
	}

	what := fmt.Sprintf("proxy %s (stack %s, certificates from %s)", cmpOr(rel.Ref(), "?"), p.Stack, p.CA)
	c := Change{Action: ledger.Proxy, What: what, DryRun: o.DryRun}
	c.Offline = func(cs *Checks) {
		if fileErr != nil {
			cs.Add("stack", "", fileErr)
			return
		}
		if pebbleDir != "" {
			if err := proxy.PebbleFiles(pebbleDir); err != nil {
				cs.Add("pebble", "", err)
				return
			}
			cs.Add("pebble", "a test CA beside Traefik; its listener's files in "+pebbleDir, nil)
		}
		ps.checkProxyFiles(cs)
	}
	c.Registry = func(ctx context.Context, cs *Checks) {
		if fileErr != nil {
			cs.NotRun("images", "needs the stack files")
			return
		}
		digest, err := s.Registry.Digest(ctx, rel.Ref())
		if err != nil {
			cs.Add("release", "", fmt.Errorf("the proxy's image %s: %w", rel.Ref(), err))
			return
		}
		rel.Digest = digest
		cs.Add("release", "Traefik "+rel.Ref(), nil)
		ps.checkImages(ctx, rel, cs)
	}
	c.Prepare = func(ctx context.Context, live *Live, cs *Checks) *Target {
		if cs.Failed() {
			return nil
		}
		st, err := loadStack(pe, rel, s.Lookup)
		if err != nil {
			cs.Add("stack", "", err)
			return nil
		}
		if p.CA == envfile.CASecrets {
			versions := versionsOf(pe.Stack, slices.Collect(maps.Values(live.Secrets)))
			if !st.bindSecrets(versions, live, cs) || !s.certificateCheck(versions, live, cs) {
				return nil
			}
		}
		desired, err := ps.convertWithConfigs(ctx, st, o.DryRun, cs)
		if err != nil {
			cs.Add("convert", "", err)
			return nil
		}
		if err := ps.pin(ctx, desired); err != nil {
			cs.Add("images", "", err)
			return nil
		}
		keepMountOrder(desired, live)
		traefik, pebble = desired.Services[proxy.Service], desired.Services["pebble"]
		if !ps.proxyNetwork(ctx, desired, live, cs) {
			return nil
		}
		if p.CA != envfile.CASecrets && !ps.certificatesNode(ctx, nodes, cs) {
			return nil
		}
		return &Target{Desired: desired, Release: rel}
	}
	c.Before = nodes.apply
	return ps.Run(ctx, c)
}

// pendingConfigs answers the converter, which looks up the ID of every
// config a service uses, for configs of the stack that do not exist yet
// (pebble's, made from files): with a stand-in ID, good for a plan only.
type pendingConfigs struct {
	objectLister
	stack string
}

func (p pendingConfigs) ConfigList(ctx context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	r, err := p.objectLister.ConfigList(ctx, o)
	if err != nil {
		return r, err
	}
	found := map[string]bool{}
	for _, c := range r.Items {
		found[c.Spec.Name] = true
	}
	for name := range o.Filters["name"] {
		if !found[name] && strings.HasPrefix(name, p.stack+"_") {
			r.Items = append(r.Items, swarm.Config{ID: "(made by this change)", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name}}})
		}
	}
	return r, nil
}

// convertWithConfigs converts the proxy's stack. The converter needs the
// IDs of the configs its services use, which a config made from a file
// (pebble's) has only once made: a real run makes those missing first
// (content-named, immutable, so harmless when the change goes no further;
// Swarm keeps them as deploy:to keeps the configs it makes), a dry run
// shows them as configs the change would make.
func (s *Session) convertWithConfigs(ctx context.Context, st *Stack, dryRun bool, cs *Checks) (*Desired, error) {
	planned, err := st.Convert(ctx, pendingConfigs{objectLister: s.API, stack: s.Env.Stack})
	if err != nil || dryRun || len(planned.Configs) == 0 {
		return planned, err
	}
	made := 0
	for _, c := range planned.Configs {
		ls, err := s.API.ConfigList(ctx, client.ConfigListOptions{Filters: client.Filters{}.Add("name", c.Name)})
		if err != nil {
			return nil, fmt.Errorf("list configs: %w", err)
		}
		if slices.ContainsFunc(ls.Items, func(x swarm.Config) bool { return x.Spec.Name == c.Name }) {
			continue
		}
		if _, err := s.API.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: c}); err != nil {
			return nil, fmt.Errorf("create config %s: %w", c.Name, err)
		}
		made++
	}
	if made > 0 {
		cs.Add("configs", fmt.Sprintf("made %d config(s) the services use (named by their content)", made), nil)
	}
	return st.Convert(ctx, s.API)
}

// keepMountOrder gives each desired service the order of mounts its live
// spec has when only the order differs: the loader sorts the mounts of
// merged files by target (deploy/proxy.yml's socket, then
// deploy/proxy-acme.yml's volume, come out the other way round), and an
// order change alone would restart Traefik for nothing.
func keepMountOrder(d *Desired, live *Live) {
	for name, spec := range d.Services {
		if _, ok := live.Services[name]; !ok {
			continue
		}
		have := live.Spec(name)
		if have.TaskTemplate.ContainerSpec == nil || spec.TaskTemplate.ContainerSpec == nil {
			continue
		}
		was, want := have.TaskTemplate.ContainerSpec.Mounts, spec.TaskTemplate.ContainerSpec.Mounts
		if len(was) != len(want) || slices.EqualFunc(was, want, mountsEqual) {
			continue
		}
		ordered := make([]mount.Mount, 0, len(want))
		for _, m := range was {
			i := slices.IndexFunc(want, func(w mount.Mount) bool { return mountsEqual(m, w) })
			if i < 0 {
				break // not the same mounts: the plan shows the change
			}
			ordered = append(ordered, want[i])
		}
		if len(ordered) == len(want) {
			cspec := *spec.TaskTemplate.ContainerSpec
			cspec.Mounts = ordered
			spec.TaskTemplate.ContainerSpec = &cspec
			d.Services[name] = spec
		}
	}
}

// mountsEqual compares two mounts as the plan's diff does.
func mountsEqual(a, b mount.Mount) bool { return sameJSON(a, b) }

// cacheDir is where deploy:proxy keeps files it makes: the directory the
// .ci scripts cache in (SERVICE_TEMPLATE_CACHE, else the user's cache).
func cacheDir() string {
	if d := os.Getenv("SERVICE_TEMPLATE_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "service-template")
	}
	return filepath.Join(os.TempDir(), "service-template")
}

// proxyEnvironment is the environment the proxy's change runs in: env's
// Swarm and endpoints, the proxy's stack and files, and the variables its
// proxy section sets.
func proxyEnvironment(env *envfile.Environment, root, pebbleDir string) *envfile.Environment {
	p := env.Proxy
	vars := maps.Clone(p.Variables)
	if vars == nil {
		vars = map[string]string{}
	}
	vars["PROXY_HTTP_PORT"] = strconv.Itoa(p.HTTPPort)
	vars["PROXY_HTTPS_PORT"] = strconv.Itoa(p.HTTPSPort)
	files := []string{filepath.Join(root, proxy.File)}
	if p.CA == envfile.CASecrets {
		files = append(files, filepath.Join(root, proxy.SecretsFile))
	} else {
		files = append(files, filepath.Join(root, proxy.ACMEFile))
		vars["ACME_CA_SERVER"] = p.ACMEDirectory()
		// pebble writes to nobody: any address does.
		vars["ACME_EMAIL"] = cmp.Or(p.Email, "ops@"+env.Name+".pebble.test")
	}
	if pebbleDir != "" {
		files = append(files, filepath.Join(root, proxy.PebbleFile))
		vars["PEBBLE_DIR"] = pebbleDir
	}
	return &envfile.Environment{
		Name: env.Name, Endpoint: env.Endpoint, Endpoints: env.Endpoints, Context: env.Context, InsecureTCP: env.InsecureTCP,
		Stack: p.Stack, Files: files, AppEnv: env.AppEnv, Deadline: env.Deadline, History: env.History, MaxReplicas: 1,
		Variables: vars,
	}
}

// certificateCheck judges the newest versions of the proxy's certificate
// and key before anything changes, by the facts secrets:set labelled them
// with (the Engine API never gives a secret's value back; secrets:set
// parsed it): the key must be the certificate's, the certificate valid
// now, and it should cover APP_HOST. A certificate that does not is
// refused on a protected environment, where every client would refuse it
// (an outage a deploy can prevent), and only warned of elsewhere, where a
// rehearsal with another name's certificate is legitimate.
func (s *Session) certificateCheck(versions SecretVersions, live *Live, cs *Checks) bool {
	const name = "certificate"
	cv, _ := versions.Newest(proxy.CertificateSecret)
	kv, _ := versions.Newest(proxy.KeySecret)
	cert, err := proxy.FactsFromLabels(ledger.LabelPrefix, live.Secrets[cv.Name].Spec.Labels)
	if err != nil {
		cs.Add(name, "", fmt.Errorf("%s (%s): %w: give its value again with secrets:set %s %s", cv.Name, proxy.CertificateSecret, err, s.Env.Name, proxy.CertificateSecret))
		return false
	}
	key, err := proxy.KeyFromLabels(ledger.LabelPrefix, live.Secrets[kv.Name].Spec.Labels)
	if err != nil {
		cs.Add(name, "", fmt.Errorf("%s (%s): %w: give its value again with secrets:set %s %s", kv.Name, proxy.KeySecret, err, s.Env.Name, proxy.KeySecret))
		return false
	}
	host, err := s.appHost()
	if err != nil {
		cs.Add(name, "", err)
		return false
	}
	verdict := proxy.CheckPair(cert, key, host, time.Now())
	what := fmt.Sprintf("%s v%d %s, key %s v%d", proxy.CertificateSecret, cv.N, cert, proxy.KeySecret, kv.N)
	if verdict.Err != nil {
		cs.Add(name, "", fmt.Errorf("%s: %w", what, verdict.Err))
		return false
	}
	warnings := verdict.Warnings
	if verdict.HostErr != nil {
		if s.Env.Protected {
			cs.Add(name, "", fmt.Errorf("%s: %w: every client would refuse it; environment %s is protected", what, verdict.HostErr, s.Env.Name))
			return false
		}
		warnings = append(warnings, verdict.HostErr.Error()+" (refused on a protected environment)")
	}
	line := what + " matches"
	if len(warnings) > 0 {
		line += "; warning: " + strings.Join(warnings, "; ")
	}
	cs.Add(name, line, nil)
	return true
}

// appHost is the host name the environment's clients use (its APP_HOST
// variable, ${NAME} read as the stack files read it); "" when unset.
func (s *Session) appHost() (string, error) {
	v, ok := s.Env.Variables["APP_HOST"]
	if !ok {
		return "", nil
	}
	host, err := template.Substitute(v, template.Mapping(s.Lookup))
	if err != nil {
		return "", fmt.Errorf("environment %s: variables.APP_HOST: %w", s.Env.Name, err)
	}
	return host, nil
}

// proxyImage reads Traefik's image (its repository and tag; a digest the
// file pins) from the proxy's files.
func proxyImage(pe *envfile.Environment, lookup func(string) (string, bool)) (Release, error) {
	st, err := loadStack(pe, Release{Repository: proxyStandIn, Tag: "v0"}, lookup)
	if err != nil {
		return Release{}, err
	}
	for _, svc := range st.Config.Services {
		if svc.Name == proxy.Service {
			img := ParseImage(svc.Image)
			return Release{Repository: img.Repository, Tag: img.Tag, Digest: img.Digest}, nil
		}
	}
	return Release{}, fmt.Errorf("stack files %s: no service %s", strings.Join(pe.Files, ", "), proxy.Service)
}

// checkProxyFiles holds the proxy's files to the proxy's rules.
func (s *Session) checkProxyFiles(cs *Checks) {
	st, err := loadStack(s.Env, Release{Repository: proxyStandIn, Tag: "v0"}, s.Lookup)
	if err != nil {
		cs.Add("stack", "", err)
		return
	}
	p, err := stack.Load(context.Background(), s.Env.Stack, st.Variables, s.Env.Files...)
	if err == nil {
		err = errors.Join(proxy.Check(p), stack.CheckServices(p, ""))
	}
	if err != nil {
		cs.Add("stack", "", fmt.Errorf("the proxy's rules: %w", err))
		return
	}
	cs.Add("stack", fmt.Sprintf("%d file(s) load and keep the proxy's rules", len(s.Env.Files)), nil)
}

// proxyNetwork makes the change create traefik-public when it is missing:
// an overlay of no stack (it outlives the proxy's), attachable so that
// one-off containers can join it.
func (s *Session) proxyNetwork(ctx context.Context, d *Desired, live *Live, cs *Checks) bool {
	d.ExternalNetworks = slices.DeleteFunc(d.ExternalNetworks, func(n string) bool { return n == proxy.Network })
	if !live.Networks[proxy.Network] {
		d.Networks[proxy.Network] = client.NetworkCreateOptions{Driver: "overlay", Attachable: true,
			Labels: map[string]string{ledger.LabelPrefix + "made-by": "deploy:proxy"}}
		cs.Add("network", proxy.Network+": missing; this change makes it (overlay, attachable)", nil)
		return true
	}
	ns, err := s.API.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", "^"+proxy.Network+"$")})
	if err != nil {
		cs.Add("network", "", fmt.Errorf("inspect %s: %w", proxy.Network, err))
		return false
	}
	for _, n := range ns.Items {
		if n.Name == proxy.Network && (n.Driver != "overlay" || n.Scope != "swarm") {
			cs.Add("network", "", fmt.Errorf("%s is a %s network of scope %s; the stacks behind the proxy need a Swarm overlay: remove it (docker network rm %s) and run deploy:proxy again", proxy.Network, n.Driver, n.Scope, proxy.Network))
			return false
		}
	}
	cs.Add("network", proxy.Network+" exists", nil)
	return true
}

// nodeLabeler labels a node.
type nodeLabeler interface {
	NodeInspect(ctx context.Context, nodeID string, options client.NodeInspectOptions) (client.NodeInspectResult, error)
	NodeUpdate(ctx context.Context, nodeID string, options client.NodeUpdateOptions) (client.NodeUpdateResult, error)
}

// plannedLabel is the engine as the proxy's change sees it: the node it
// will label carries the label already, so that preflight's placement
// check judges the nodes as the change leaves them (a dry run included).
// apply sets it for real.
type plannedLabel struct {
	Engine
	node string // the ID of the node to label; "" when none needs it
}

func (p *plannedLabel) NodeList(ctx context.Context, o client.NodeListOptions) (client.NodeListResult, error) {
	r, err := p.Engine.NodeList(ctx, o)
	if err != nil || p.node == "" {
		return r, err
	}
	items := slices.Clone(r.Items)
	for i, n := range items {
		if n.ID == p.node {
			n.Spec.Labels = maps.Clone(n.Spec.Labels)
			if n.Spec.Labels == nil {
				n.Spec.Labels = map[string]string{}
			}
			n.Spec.Labels[proxy.CertificatesLabel] = "true"
			items[i] = n
		}
	}
	r.Items = items
	return r, nil
}

// apply labels the node, under the change's lock.
func (p *plannedLabel) apply(ctx context.Context) error {
	if p.node == "" {
		return nil
	}
	api, ok := p.Engine.(nodeLabeler)
	if !ok {
		return errors.New("this engine client cannot label nodes")
	}
	r, err := api.NodeInspect(ctx, p.node, client.NodeInspectOptions{})
	if err != nil {
		return fmt.Errorf("label node %s: %w", p.node, err)
	}
	spec := r.Node.Spec
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[proxy.CertificatesLabel] = "true"
	if _, err := api.NodeUpdate(ctx, p.node, client.NodeUpdateOptions{Version: r.Node.Version, Spec: spec}); err != nil {
		return fmt.Errorf("label node %s %s=true: %w", r.Node.Description.Hostname, proxy.CertificatesLabel, err)
	}
	return nil
}

// certificatesNode adds the preflight line of the node that keeps the
// certificates, and plans its label when it has none.
func (s *Session) certificatesNode(ctx context.Context, planned *plannedLabel, cs *Checks) bool {
	ns, err := planned.Engine.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		cs.Add("certificates", "", fmt.Errorf("list nodes: %w", err))
		return false
	}
	n, label, err := chooseCertificatesNode(ns.Items, s.Env.Name, envProxyNode(s))
	if err != nil {
		cs.Add("certificates", "", err)
		return false
	}
	if label {
		planned.node = n.ID
		cs.Add("certificates", fmt.Sprintf("node %s will be labelled %s=true: it keeps acme.json", n.Description.Hostname, proxy.CertificatesLabel), nil)
		return true
	}
	cs.Add("certificates", fmt.Sprintf("node %s keeps acme.json (labelled %s=true)", n.Description.Hostname, proxy.CertificatesLabel), nil)
	return true
}

// envProxyNode is the node the environment names for the certificates.
func envProxyNode(s *Session) string {
	if e, err := s.Envs.Get(s.Env.Name); err == nil && e.Proxy != nil {
		return e.Proxy.Node
	}
	return ""
}

// chooseCertificatesNode picks the one node that keeps the ACME storage:
// the one labelled already, the one the environment names (proxy.node), or
// the Swarm's only manager; label says it needs the label. Two labelled
// nodes, or a named node other than the one labelled, are refused: the
// storage is a volume on one node, and moving the label would lose it.
func chooseCertificatesNode(nodes []swarm.Node, env, want string) (n swarm.Node, label bool, err error) {
	var labelled, managers []swarm.Node
	for _, n := range nodes {
		if n.Spec.Labels[proxy.CertificatesLabel] == "true" {
			labelled = append(labelled, n)
		}
		if n.Spec.Role == swarm.NodeRoleManager {
			managers = append(managers, n)
		}
	}
	names := func(ns []swarm.Node) string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Description.Hostname)
		}
		slices.Sort(out)
		return strings.Join(out, ", ")
	}
	notManager := func(n swarm.Node) error {
		return fmt.Errorf("node %s is a worker: Traefik reads the Swarm API, so it runs on a manager (managers: %s)", n.Description.Hostname, names(managers))
	}
	switch {
	case len(labelled) > 1:
		return swarm.Node{}, false, fmt.Errorf("nodes %s all carry %s=true, and acme.json is a volume on one node: remove the label from all but one (docker node update --label-rm %s NODE)", names(labelled), proxy.CertificatesLabel, proxy.CertificatesLabel)
	case want != "":
		i := slices.IndexFunc(nodes, func(n swarm.Node) bool { return n.Description.Hostname == want })
		switch {
		case i < 0:
			return swarm.Node{}, false, fmt.Errorf("environments.%s.proxy.node: no node is named %s (nodes: %s)", env, want, names(nodes))
		case nodes[i].Spec.Role != swarm.NodeRoleManager:
			return swarm.Node{}, false, notManager(nodes[i])
		case len(labelled) == 1 && labelled[0].ID != nodes[i].ID:
			return swarm.Node{}, false, fmt.Errorf("node %s keeps the certificates (%s=true), not %s as environments.%s.proxy.node says: moving them loses acme.json; to move anyway, remove the label there (docker node update --label-rm %s %s) and run deploy:proxy again, which orders new certificates", labelled[0].Description.Hostname, proxy.CertificatesLabel, want, env, proxy.CertificatesLabel, labelled[0].Description.Hostname)
		}
		return nodes[i], len(labelled) == 0, nil
	case len(labelled) == 1:
		if labelled[0].Spec.Role != swarm.NodeRoleManager {
			return swarm.Node{}, false, notManager(labelled[0])
		}
		return labelled[0], false, nil
	case len(managers) == 1:
		return managers[0], true, nil
	}
	return swarm.Node{}, false, fmt.Errorf("no node carries %s=true and the Swarm has %d managers (%s): name the one that keeps acme.json in environments.%s.proxy.node", proxy.CertificatesLabel, len(managers), names(managers), env)
}

// proxyRetries is how often the proxy's check asks before it fails.
var proxyRetries = 5

// checkProxy asks the converged proxy: a job from Traefik's image on
// traefik-public runs `traefik healthcheck --ping` against the proxy's
// tasks (Traefik answers on the network the stacks share); on this
// machine's engine, its HTTPS port answers a TLS handshake; with pebble,
// pebble's current root is kept for clients to trust.
func (s *Session) checkProxy(ctx context.Context, traefik, pebble swarm.ServiceSpec, pebbleDir string) error {
	u := "tasks." + proxy.Service + ":8080"
	fmt.Fprintf(s.Out, "Proxy check: Traefik's /ping at %s, from a job on %s\n", u, proxy.Network)
	var last error
	for i := range proxyRetries {
		out, err := s.runJob(ctx, traefik, JobOptions{Purpose: "proxycheck",
			Args: []string{"healthcheck", "--ping", "--entrypoints.traefik.address=" + u}, Deadline: time.Minute})
		if err == nil {
			fmt.Fprintf(s.Out, "  %s\n", strings.TrimPrefix(lastLine(out), ": "))
			last = nil
			break
		}
		last = fmt.Errorf("%w%s", err, lastLine(out))
		if i < proxyRetries-1 {
			time.Sleep(2 * time.Second)
		}
	}
	if last != nil {
		return fmt.Errorf("proxy check: %w", last)
	}
	if !s.Endpoint.Local() {
		return nil
	}
	port := publishedPort(traefik, 443)
	if err := tlsAnswers(ctx, port); err != nil {
		return fmt.Errorf("proxy check: HTTPS on 127.0.0.1:%d: %w", port, err)
	}
	fmt.Fprintf(s.Out, "  HTTPS answers on 127.0.0.1:%d\n", port)
	if pebbleDir == "" {
		return nil
	}
	return s.keepPebbleRoot(ctx, pebbleDir, publishedPort(pebble, 15000))
}

// keepPebbleRoot fetches the root pebble signs with from its management
// port on this machine and writes it where clients find it.
func (s *Session) keepPebbleRoot(ctx context.Context, dir string, port int) error {
	caPEM, err := os.ReadFile(filepath.Join(dir, proxy.PebbleListenerCA))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/roots/0", port)
	var root []byte
	for i := range proxyRetries {
		root, err = get(ctx, hc, url)
		if err == nil {
			break
		}
		if i < proxyRetries-1 {
			time.Sleep(2 * time.Second)
		}
	}
	if err != nil {
		return fmt.Errorf("pebble's root at %s: %w", url, err)
	}
	path := filepath.Join(dir, proxy.PebbleRoot)
	if err := os.WriteFile(path, root, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "  pebble's root (new each time pebble starts) is in %s\n", path)
	return nil
}

// get GETs url and returns its body, failing unless it is 200.
func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return body, err
}

// tlsAnswers says whether a TLS server answers a handshake on the port of
// this machine (any certificate: Traefik serves its own until a router
// has one).
func tlsAnswers(ctx context.Context, port int) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // G402: only whether TLS is served is checked
	var err error
	for i := range proxyRetries {
		var c net.Conn
		if c, err = d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return c.Close()
		}
		if i < proxyRetries-1 {
			time.Sleep(time.Second)
		}
	}
	return err
}

// publishedPort is the port spec publishes for target, target when none.
func publishedPort(spec swarm.ServiceSpec, target uint32) int {
	if spec.EndpointSpec != nil {
		for _, p := range spec.EndpointSpec.Ports {
			if p.TargetPort == target && p.PublishedPort != 0 {
				return int(p.PublishedPort)
			}
		}
	}
	return int(target)
}
