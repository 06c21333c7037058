// Package envfile reads deploy/environments.yml: where each environment's
// stack runs and how a change to it is made. It checks the whole file and
// names the file, environment and key of every problem, so a typo never
// becomes a silent default.
package envfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
)

// DefaultPath is where the environments are described, relative to the
// repository root. It is not part of the image's build context, so changing
// a deploy setting never changes the image. DEPLOY_ENVIRONMENTS_FILE names
// another file.
const DefaultPath = "deploy/environments.yml"

// Environment is one place the stack is deployed to.
type Environment struct {
	Name string `yaml:"-"`

	// Endpoint is the Docker host of a Swarm manager: "" for this machine's
	// engine (DOCKER_HOST or the default socket), unix://, tcp:// (TLS
	// material from DEPLOY_TLS_CA, DEPLOY_TLS_CERT, DEPLOY_TLS_KEY) or
	// ssh://user@host (key from DEPLOY_SSH_KEY or the ssh agent). Context
	// names a Docker context instead. DEPLOY_HOST, when set, overrides both
	// for the environment being deployed.
	Endpoint string `yaml:"endpoint"`
	// Endpoints names several managers of one Swarm instead, tried in
	// order: a change uses the first that answers as a manager, and says
	// which. The lock and the records are in the Swarm's Raft store, so any
	// manager has them.
	Endpoints []string `yaml:"endpoints"`
	Context   string   `yaml:"context"`
	// InsecureTCP lets a tcp:// endpoint that is not on loopback go without
	// TLS. Everything the deploy sends, secret values included, then
	// crosses the network in clear: only for a network you trust, and
	// never for a protected environment.
	InsecureTCP bool `yaml:"insecure_tcp"`

	Stack string   `yaml:"stack"` // the stack name; services are <stack>_<service>
	Image string   `yaml:"image"` // the app's image repository, without tag
	Files []string `yaml:"files"` // stack files, later ones override earlier ones

	AppEnv      string        `yaml:"app_env"`      // APP_ENV of the service
	Deadline    time.Duration `yaml:"deadline"`     // for a rollout to converge
	History     int           `yaml:"history"`      // deploy records kept
	MaxReplicas int           `yaml:"max_replicas"` // deploy:scale refuses more
	Protected   bool          `yaml:"protected"`    // production rules apply
	// PromoteFrom names the environment whose successful deploys are the
	// only digests a protected environment accepts.
	PromoteFrom string `yaml:"promote_from"`

	// Variables are given to the stack files besides the image and APP_ENV.
	// ${NAME} and ${NAME:-default} in a value are read from the deployer's
	// environment: written here, never implied.
	Variables map[string]string `yaml:"variables"`

	// Registry, when set, is a registry on 127.0.0.1 that deploy:init
	// starts (local environments only).
	Registry *LocalRegistry `yaml:"registry"`

	// InitSecrets are made by deploy:init when missing, in a non-protected
	// environment: "{{random}}" is 52 random characters and {{name}} the
	// value of another secret made here; any other {{ or }} is an error.
	InitSecrets map[string]string `yaml:"init_secrets"`

	// Smoke, when set, is checked once a change has converged: /ready must
	// answer 200 and /version report the release deployed, or the change
	// fails and the stack is restored.
	Smoke *Smoke `yaml:"smoke"`

	// Notify, when set, names the webhook deploy events are POSTed to.
	Notify *Notify `yaml:"notify"`

	// Proxy, when set, is the front proxy of the environment's Swarm
	// (deploy/proxy.yml), which deploy:proxy deploys as a stack of its
	// own: one per Swarm, shared by every stack on it that joins its
	// network. Environments sharing a Swarm give the same section.
	Proxy *Proxy `yaml:"proxy"`

	// Verify, when set, is the key a release's digest must be signed by,
	// its SBOM bound in the signature (image:sign): preflight refuses an
	// image it cannot verify. A protected environment must have one.
	Verify *Verify `yaml:"verify"`
}

// Verify is what a deploy checks a release's signature against.
type Verify struct {
	// Key is a public key (cosign's PEM): inline, or a file relative to
	// the repository root.
	Key string `yaml:"key"`
	// AllowOverride lets -override skip the check (it is recorded); off,
	// nothing skips it.
	AllowOverride bool `yaml:"allow_override"`
}

// Proxy is how deploy:proxy runs the front proxy on an environment's Swarm.
type Proxy struct {
	// Stack is the proxy's stack name, shared by the environments on its
	// Swarm: its lock and records are its own. Default "proxy".
	Stack string `yaml:"stack"`
	// CA is where certificates come from. From an ACME CA (TLS-ALPN):
	// letsencrypt (the default), letsencrypt-staging (for rehearsals:
	// untrusted certificates, generous rate limits), pebble (Let's
	// Encrypt's test CA, run beside Traefik: for a local environment and
	// tests, never a protected one), or an ACME directory URL
	// (https://...). Or secrets: a certificate and key of one's own (a
	// corporate CA's, a wildcard bought elsewhere), the proxy stack's
	// versioned Docker secrets tls_certificate and tls_key (secrets:set
	// ENV tls_certificate, then tls_key), nothing ordered.
	CA string `yaml:"ca"`
	// Email is the ACME account's contact, whom the CA warns of expiring
	// certificates; required with an ACME CA but pebble, refused with
	// secrets (nobody would write).
	Email string `yaml:"email"`
	// Node is the hostname of the node that keeps the ACME storage
	// (acme.json, on a volume): deploy:proxy labels it
	// traefik-public.certificates=true. Empty: the node that carries the
	// label already, else the Swarm's only manager. Refused with secrets:
	// the certificate is on every node that may run Traefik.
	Node string `yaml:"node"`
	// HTTPPort and HTTPSPort are published on the node that runs Traefik
	// (host mode); 80 and 443 unless given.
	HTTPPort  int `yaml:"http_port"`
	HTTPSPort int `yaml:"https_port"`
	// Variables are given to the proxy's stack files besides those the
	// keys above set (PROXY_LOG_LEVEL, TRAEFIK_IMAGE, PEBBLE_IMAGE, ...);
	// ${NAME} reads the deployer's environment, as in variables.
	Variables map[string]string `yaml:"variables"`
}

// Known values of proxy.ca, and the ACME directories they name.
const (
	CALetsEncrypt        = "letsencrypt"
	CALetsEncryptStaging = "letsencrypt-staging"
	CAPebble             = "pebble"
	CASecrets            = "secrets"
	DefaultProxyStack    = "proxy"
)

// ACMEDirectory is the ACME directory URL of the proxy's CA.
func (p *Proxy) ACMEDirectory() string {
	switch p.CA {
	case CALetsEncrypt:
		return "https://acme-v02.api.letsencrypt.org/directory"
	case CALetsEncryptStaging:
		return "https://acme-staging-v02.api.letsencrypt.org/directory"
	case CAPebble:
		// pebble's tasks on traefik-public, by address: no VIP needed.
		return "https://tasks.pebble:14000/dir"
	}
	return p.CA
}

// check validates a proxy section and fills in its defaults.
func (p *Proxy) check(protected bool) []string {
	var errs []string
	if p.Stack == "" {
		p.Stack = DefaultProxyStack
	}
	if !stackName.MatchString(p.Stack) {
		errs = append(errs, fmt.Sprintf("stack: %q: want lower-case letters, digits, '_' and '-', at most 48", p.Stack))
	}
	if p.CA == "" {
		p.CA = CALetsEncrypt
	}
	switch p.CA {
	case CALetsEncrypt, CALetsEncryptStaging:
	case CASecrets:
		if p.Email != "" {
			errs = append(errs, "email: ca: secrets orders no certificate, so no CA writes to it: remove it (the expiry of your certificate is yours to watch; deploy:proxy warns three weeks before)")
		}
		if p.Node != "" {
			errs = append(errs, "node: ca: secrets keeps no certificate on a node (that is ACME's acme.json): remove it")
		}
	case CAPebble:
		if protected {
			errs = append(errs, "ca: pebble is a test CA whose certificates nobody trusts; a protected environment uses letsencrypt (or another CA's directory URL)")
		}
	default:
		if u, err := url.Parse(p.CA); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Sprintf("ca: %q: want letsencrypt, letsencrypt-staging, pebble, an ACME directory's https:// URL (without credentials), or secrets (a certificate of your own)", p.CA))
		}
	}
	switch {
	case p.CA == CASecrets:
	case p.Email == "" && p.CA != CAPebble:
		errs = append(errs, "email: the ACME account's contact is required: the CA writes there about expiring certificates")
	case p.Email != "" && (!strings.Contains(p.Email, "@") || strings.ContainsAny(p.Email, " ,")):
		errs = append(errs, fmt.Sprintf("email: %q is not an address", p.Email))
	}
	if p.Node != "" && !svcName.MatchString(p.Node) {
		errs = append(errs, fmt.Sprintf("node: %q is not a hostname", p.Node))
	}
	if p.HTTPPort == 0 {
		p.HTTPPort = 80
	}
	if p.HTTPSPort == 0 {
		p.HTTPSPort = 443
	}
	for key, port := range map[string]int{"http_port": p.HTTPPort, "https_port": p.HTTPSPort} {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Sprintf("%s: %d: want a TCP port", key, port))
		}
	}
	if p.HTTPPort == p.HTTPSPort {
		errs = append(errs, fmt.Sprintf("https_port: %d is http_port too", p.HTTPSPort))
	}
	for _, k := range slices.Sorted(maps.Keys(p.Variables)) {
		switch {
		case !varName.MatchString(k):
			errs = append(errs, fmt.Sprintf("variables.%s: want an upper-case variable name", k))
		case slices.Contains(ProxyVariables, k):
			errs = append(errs, fmt.Sprintf("variables.%s: set by deploy:proxy from the keys of proxy", k))
		}
	}
	slices.Sort(errs)
	return errs
}

// ProxyVariables are the proxy files' variables deploy:proxy sets from the
// proxy section.
var ProxyVariables = []string{"ACME_EMAIL", "ACME_CA_SERVER", "PROXY_HTTP_PORT", "PROXY_HTTPS_PORT", "PEBBLE_DIR"}

// Smoke is where a smoke check asks: a URL from the deploying machine, or
// a service of the stack on its own network.
type Smoke struct {
	// URL is requested from the deploying machine: <url>/ready and
	// <url>/version. It is committed, so it carries no credentials.
	URL string `yaml:"url"`
	// Service is a service of the stack, asked on the stack's network by a
	// job from the release's image (app probe): every task behind
	// tasks.<service>, at http://tasks.<service>:<port><path>ready and
	// ...version.
	Service string `yaml:"service"`
	Port    int    `yaml:"port"` // with service; default 8080
	Path    string `yaml:"path"` // with service; default /
	// Timeout is how long the check may keep trying (the new tasks are
	// healthy by then, but a proxy may take a moment); default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Notify names a webhook. Its URL often carries a token, so the file names
// the environment variable that holds it, never the URL.
type Notify struct {
	URLEnv  string        `yaml:"url_env"`
	Timeout time.Duration `yaml:"timeout"` // per event; default 5s
}

// LocalRegistry is a registry container deploy:init starts.
type LocalRegistry struct {
	Port int `yaml:"port"`
}

// Defaults for keys an environment leaves out.
const (
	DefaultDeadline      = 10 * time.Minute // kubectl's progressDeadlineSeconds
	DefaultHistory       = 20
	DefaultMaxReplicas   = 10
	DefaultSmokePort     = 8080
	DefaultSmokeTimeout  = 30 * time.Second
	DefaultNotifyTimeout = 5 * time.Second
)

// Managers are the endpoints a change may use, in the order it tries them:
// Endpoints, or Endpoint alone ("" for this machine's engine).
func (e *Environment) Managers() []string {
	if len(e.Endpoints) > 0 {
		return e.Endpoints
	}
	return []string{e.Endpoint}
}

// MaxHold is the longest a change to e can hold its lock while still
// working: the pending-migrations job (at most 2m), then up to four waits
// of a deadline each (the dependencies, the migration job, the release's
// services, and a restore), the smoke check (its timeout and one last
// round of up to a minute) and the bookkeeping around them. Every call to
// the engine is bounded by the time left, so a lock older than this was
// left by a change that is gone.
func (e *Environment) MaxHold() time.Duration {
	hold := 2*time.Minute + 4*e.Deadline + 2*time.Minute
	if e.Smoke != nil {
		hold += e.Smoke.Timeout + time.Minute
	}
	return hold
}

// File is the environments file as read.
type File struct {
	Path   string // as given
	SHA256 string // of its bytes: a record names the file it was made with
	Environments
}

// Environments are the sections of the environments file by name.
type Environments map[string]*Environment

// Get returns the named environment, or an error listing the known ones.
func (es Environments) Get(name string) (*Environment, error) {
	if e, ok := es[name]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("unknown environment %q; known: %s", name, strings.Join(es.Names(), ", "))
}

// Names lists the environments, sorted.
func (es Environments) Names() []string { return slices.Sorted(maps.Keys(es)) }

// Load reads and checks the environments file. Relative stack files are
// relative to root, the repository root. Every problem is reported, each
// naming the file, the environment and the key.
func Load(path, root string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("environments file: %w", err)
	}
	envs, err := Parse(bytes.NewReader(data), path, root)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &File{Path: path, SHA256: hex.EncodeToString(sum[:]), Environments: envs}, nil
}

var (
	envName   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	varName   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	svcName   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	stackName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)
	// appEnvs are the service's environments (config/{name}.json).
	appEnvs = []string{"development", "test", "staging", "production"}
)

// Parse reads an environments file from r; path names it in errors.
func Parse(r io.Reader, path, root string) (Environments, error) {
	var doc struct {
		Environments map[string]*Environment `yaml:"environments"`
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Environments) == 0 {
		return nil, fmt.Errorf("%s: no environments: want a top-level environments: map", path)
	}
	var errs []error
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: environments.%s.%s", path, name, fmt.Sprintf(format, args...)))
	}
	stacks := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(doc.Environments)) {
		e := doc.Environments[name]
		if e == nil {
			errs = append(errs, fmt.Errorf("%s: environments.%s: empty", path, name))
			continue
		}
		e.Name = name
		if !envName.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: environments.%s: the name must be lower-case letters, digits and '-', starting with a letter", path, name))
		}
		switch {
		case !stackName.MatchString(e.Stack):
			fail(name, "stack: %q: want lower-case letters, digits, '_' and '-', at most 48", e.Stack)
		case stacks[e.Stack] != "":
			fail(name, "stack: %q is also environment %s's stack; each environment needs its own", e.Stack, stacks[e.Stack])
		default:
			stacks[e.Stack] = name
		}
		switch {
		case e.Endpoint != "" && e.Context != "", len(e.Endpoints) > 0 && e.Context != "":
			fail(name, "context: set endpoint (or endpoints) or context, not both")
		case e.Endpoint != "" && len(e.Endpoints) > 0:
			fail(name, "endpoints: set endpoint or endpoints, not both")
		}
		if err := CheckEndpoint(e.Endpoint); err != nil {
			fail(name, "endpoint: %v", err)
		}
		for i, ep := range e.Endpoints {
			if err := CheckEndpoint(ep); err != nil || ep == "" {
				fail(name, "endpoints[%d]: %v", i, cmpOr(fmt.Sprint(err), "empty"))
			}
		}
		if e.InsecureTCP && e.Protected {
			fail(name, "insecure_tcp: a protected environment's endpoint always uses TLS")
		}
		if ref, err := reference.ParseNormalizedNamed(e.Image); err != nil || !reference.IsNameOnly(ref) {
			fail(name, "image: %q: want a repository without tag or digest, like ghcr.io/owner/repo", e.Image)
		}
		if len(e.Files) == 0 {
			fail(name, "files: want at least the production stack file")
		}
		for i, f := range e.Files {
			if !filepath.IsAbs(f) {
				f = filepath.Join(root, f)
				e.Files[i] = f
			}
			if _, err := os.Stat(f); err != nil {
				fail(name, "files[%d]: %v", i, err)
			}
		}
		if !slices.Contains(appEnvs, e.AppEnv) {
			fail(name, "app_env: %q: want one of %s", e.AppEnv, strings.Join(appEnvs, ", "))
		}
		if e.Deadline == 0 {
			e.Deadline = DefaultDeadline
		}
		if e.Deadline < 10*time.Second {
			fail(name, "deadline: %s is too short for a rollout; want 10s or more", e.Deadline)
		}
		if e.History == 0 {
			e.History = DefaultHistory
		}
		if e.History < 2 {
			fail(name, "history: %d: keep at least 2 records, or rollback has nothing to go back to", e.History)
		}
		if e.MaxReplicas == 0 {
			e.MaxReplicas = DefaultMaxReplicas
		}
		if e.MaxReplicas < 1 {
			fail(name, "max_replicas: %d: want 1 or more", e.MaxReplicas)
		}
		if e.Registry != nil && (e.Registry.Port < 1 || e.Registry.Port > 65535) {
			fail(name, "registry.port: %d: want a TCP port", e.Registry.Port)
		}
		if e.Protected && (e.Registry != nil || len(e.InitSecrets) > 0) {
			fail(name, "protected: a protected environment's registry and secrets are not made by deploy:init; remove registry and init_secrets")
		}
		for _, msg := range checkInitSecrets(e.InitSecrets) {
			fail(name, "init_secrets.%s", msg)
		}
		for k := range e.Variables {
			if k == "IMAGE_TAG" || k == "REGISTRY" || k == "IMAGE_NAME" || k == "APP_ENV" {
				fail(name, "variables.%s: set by the deploy from image and app_env", k)
			}
		}
		if e.Smoke != nil {
			for _, msg := range e.Smoke.check() {
				fail(name, "smoke.%s", msg)
			}
		}
		if e.Proxy != nil {
			for _, msg := range e.Proxy.check(e.Protected) {
				fail(name, "proxy.%s", msg)
			}
		}
		if e.Notify != nil {
			for _, msg := range e.Notify.check() {
				fail(name, "notify.%s", msg)
			}
		}
		switch {
		case e.Verify != nil:
			if msg := e.Verify.check(root); msg != "" {
				fail(name, "verify.%s", msg)
			}
		case e.Protected:
			fail(name, "verify: a protected environment runs only images signed by a key it names: verify: {key: deploy/cosign.pub} (go tool mage image:keygen makes a pair)")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(doc.Environments)) {
		if e := doc.Environments[name]; e != nil && e.Proxy != nil && stacks[e.Proxy.Stack] != "" {
			fail(name, "proxy.stack: %q is environment %s's stack; the proxy's stack is its own", e.Proxy.Stack, stacks[e.Proxy.Stack])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(doc.Environments)) {
		e := doc.Environments[name]
		if e == nil || e.PromoteFrom == "" {
			if e != nil && e.Protected {
				fail(name, "promote_from: a protected environment names the environment its releases must have run on first")
			}
			continue
		}
		if src, ok := doc.Environments[e.PromoteFrom]; !ok || src == nil || e.PromoteFrom == name {
			fail(name, "promote_from: %q is not another environment of this file", e.PromoteFrom)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return doc.Environments, nil
}

// CheckEndpoint checks the form of an endpoint: unix://, tcp:// or ssh://.
func CheckEndpoint(ep string) error {
	if ep == "" {
		return nil
	}
	scheme, _, ok := strings.Cut(ep, "://")
	if !ok || !slices.Contains([]string{"unix", "tcp", "ssh"}, scheme) {
		return fmt.Errorf("%q: want unix://, tcp:// or ssh://", ep)
	}
	return nil
}

// URLs are the readiness and version URLs a smoke check asks.
func (s *Smoke) URLs() (ready, version string) {
	base := strings.TrimSuffix(s.URL, "/") + "/"
	if s.Service != "" {
		base = fmt.Sprintf("http://tasks.%s:%d%s", s.Service, s.Port, strings.TrimSuffix(s.Path, "/")+"/")
	}
	return base + "ready", base + "version"
}

// check validates a smoke section and fills in its defaults; each problem
// starts with the key at fault.
func (s *Smoke) check() []string {
	var errs []string
	switch {
	case s.URL != "" && s.Service != "":
		errs = append(errs, "url: give url or service, not both")
	case s.URL != "":
		u, err := url.Parse(s.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Sprintf("url: %q: want an http:// or https:// URL", s.URL))
		case u.User != nil:
			errs = append(errs, "url: no credentials in a committed file; the smoke URL is requested without any")
		case u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Sprintf("url: %q: want a base URL without query or fragment; ready and version are appended to it", s.URL))
		}
		if s.Port != 0 || s.Path != "" {
			errs = append(errs, "url: port and path go with service; put them in the URL")
		}
	case s.Service != "":
		if !svcName.MatchString(s.Service) {
			errs = append(errs, fmt.Sprintf("service: %q is not a service name", s.Service))
		}
		if s.Port == 0 {
			s.Port = DefaultSmokePort
		}
		if s.Port < 1 || s.Port > 65535 {
			errs = append(errs, fmt.Sprintf("port: %d: want a TCP port", s.Port))
		}
		if s.Path == "" {
			s.Path = "/"
		}
		if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "?# ") {
			errs = append(errs, fmt.Sprintf("path: %q: want a path starting with /", s.Path))
		}
	default:
		errs = append(errs, "url: give url (asked from the deploying machine) or service (asked on the stack's network)")
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSmokeTimeout
	}
	if s.Timeout < time.Second || s.Timeout > 10*time.Minute {
		errs = append(errs, fmt.Sprintf("timeout: %s: want 1s to 10m", s.Timeout))
	}
	return errs
}

// check validates a verify section; a key given as a file is made
// absolute against root.
func (v *Verify) check(root string) string {
	switch {
	case v.Key == "":
		return "key: want the public key a release must be signed by: a file (deploy/cosign.pub) or PEM"
	case strings.Contains(v.Key, "-----BEGIN"):
		return ""
	}
	if !filepath.IsAbs(v.Key) {
		v.Key = filepath.Join(root, v.Key)
	}
	if _, err := os.Stat(v.Key); err != nil {
		return fmt.Sprintf("key: %v", err)
	}
	return ""
}

// check validates a notify section and fills in its defaults.
func (n *Notify) check() []string {
	var errs []string
	if !varName.MatchString(n.URLEnv) {
		// Not quoted: a URL put here by mistake carries its token.
		errs = append(errs, "url_env: want the name of the environment variable that holds the webhook's URL (upper-case letters, digits and _, like DEPLOY_WEBHOOK_URL), never the URL itself")
	}
	if n.Timeout == 0 {
		n.Timeout = DefaultNotifyTimeout
	}
	if n.Timeout < 100*time.Millisecond || n.Timeout > 30*time.Second {
		errs = append(errs, fmt.Sprintf("timeout: %s: want 100ms to 30s (a slow webhook must not hold a deploy)", n.Timeout))
	}
	return errs
}
