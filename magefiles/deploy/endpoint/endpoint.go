// Package endpoint connects to an environment's Swarm manager: the local
// engine, unix://, tcp:// (TLS), ssh:// or a Docker context, with credentials
// from the deploying machine's environment that never reach a message.
package endpoint

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/connhelper"
	dockercontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

// ResponseTimeout bounds how long the engine may take to start answering a
// request. A manager that accepted a connection and went silent (a
// half-dead ssh tunnel, a stalled TLS proxy) would otherwise hold a change
// past any deadline. Streams (logs) are not cut once they answered. A
// variable for tests.
var ResponseTimeout = 45 * time.Second

// Endpoint says how to reach an environment's Swarm manager, for messages:
// never a credential.
type Endpoint struct {
	Host    string // what the client connects to
	Source  string // where that came from: DEPLOY_HOST, the environments file, a context
	Context string
}

// Local reports whether e is this machine's engine (DOCKER_HOST or the
// default socket), not an endpoint, a context or DEPLOY_HOST.
func (e Endpoint) Local() bool { return e.Host == "" && e.Context == "" }

func (e Endpoint) String() string {
	s := cmp.Or(e.Host, "the local engine ("+cmp.Or(os.Getenv("DOCKER_HOST"), client.DefaultDockerHost)+")")
	if e.Context != "" {
		s = "context " + e.Context + " (" + s + ")"
	}
	return s
}

// Connection is an engine client for one environment. Close it: it removes
// any key it wrote to a temporary file.
type Connection struct {
	*client.Client // the chosen manager's: the first candidate's until Choose
	Endpoint       Endpoint
	candidates     []candidate
	cleanup        func()
	sshFlags       []string
}

type candidate struct {
	cli *client.Client
	ep  Endpoint
}

// Close closes the clients and removes temporary credentials.
func (c *Connection) Close() error {
	var err error
	for _, cand := range c.candidates {
		if e := cand.cli.Close(); e != nil && err == nil {
			err = e
		}
	}
	if c.cleanup != nil {
		c.cleanup()
	}
	return err
}

// chooseTimeout bounds how long one manager may take to answer a ping
// before the next one is tried. One that answers then has ResponseTimeout
// to say what it is: a manager of a Swarm without a leader takes the
// engine's own bound on a Swarm request (20 s), twice, to answer /info.
var chooseTimeout = 10 * time.Second

// Choose makes the first candidate that answers as a Swarm manager the
// connection's, when the environment names several; notes say which were
// passed over and why. When none does, the first that answered at all is
// chosen (the change's own checks then say what is wrong with it, a lost
// quorum say), or else the first.
func (c *Connection) Choose(ctx context.Context) (notes []string) {
	if len(c.candidates) < 2 {
		return nil
	}
	chosen := c.candidates[0]
	answered := false
	for _, cand := range c.candidates {
		pctx, cancel := context.WithTimeout(ctx, chooseTimeout)
		_, err := cand.cli.Ping(pctx, client.PingOptions{})
		cancel()
		if err != nil {
			cause := Cause(err)
			if errors.Is(err, context.DeadlineExceeded) {
				cause = fmt.Sprintf("no answer within %s", chooseTimeout)
			}
			notes = append(notes, fmt.Sprintf("%s does not answer: %s", cand.ep.Host, cause))
			continue
		}
		if !answered {
			chosen, answered = cand, true
		}
		ictx, cancel := context.WithTimeout(ctx, ResponseTimeout)
		info, err := cand.cli.Info(ictx, client.InfoOptions{})
		cancel()
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%s answers, but not with what it is: %s", cand.ep.Host, Cause(err)))
		case info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Info.Swarm.ControlAvailable:
			notes = append(notes, fmt.Sprintf("%s is not a Swarm manager (node state %s)", cand.ep.Host, info.Info.Swarm.LocalNodeState))
		default:
			c.Client, c.Endpoint = cand.cli, cand.ep
			return notes
		}
	}
	c.Client, c.Endpoint = chosen.cli, chosen.ep
	return notes
}

// Prefix is where an environment's connection variables start: DEPLOY_ for
// the environment being changed (DEPLOY_HOST, DEPLOY_SSH_KEY, DEPLOY_TLS_CA,
// ...), DEPLOY_<NAME>_ for another one (the environment a release is
// promoted from: DEPLOY_STAGING_HOST, ...).
func Prefix(env string, target bool) string {
	if target {
		return "DEPLOY_"
	}
	return "DEPLOY_" + strings.ToUpper(strings.ReplaceAll(env, "-", "_")) + "_"
}

// Connect opens a client for env's endpoint; target says whether env is the
// environment being changed (see Prefix). It does not dial: whether the
// endpoint answers is the first check of a change.
//
// Key material from the environment is written nowhere but a temporary file
// only this user can read, removed by Close (ssh needs a file); TLS material
// stays in memory. A tcp:// endpoint off loopback must use TLS unless the
// environment says insecure_tcp (never a protected one).
func Connect(env *envfile.Environment, target bool, getenv func(string) string) (*Connection, error) {
	prefix := Prefix(env.Name, target)
	hosts, source := env.Managers(), "environments file"
	if h := getenv(prefix + "HOST"); h != "" {
		// A comma-separated list names several managers, as endpoints: does.
		hosts, source = strings.Split(h, ","), prefix+"HOST"
		for _, host := range hosts {
			if host == "" {
				return nil, fmt.Errorf("%sHOST: an empty endpoint in %q", prefix, h)
			}
			if err := envfile.CheckEndpoint(host); err != nil {
				return nil, fmt.Errorf("%sHOST: %w", prefix, err)
			}
		}
	}
	conn := &Connection{}
	for _, host := range hosts {
		ep := Endpoint{Host: host, Source: source}
		if source == "environments file" {
			ep.Context = env.Context
		}
		cli, err := newClient(env, ep, prefix, getenv, conn)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn.candidates = append(conn.candidates, candidate{cli: cli, ep: ep})
	}
	conn.Client, conn.Endpoint = conn.candidates[0].cli, conn.candidates[0].ep
	return conn, nil
}

// newClient makes the client of one endpoint. An ssh key is written once,
// for all of them, and removed by conn's Close.
func newClient(env *envfile.Environment, ep Endpoint, prefix string, getenv func(string) string, conn *Connection) (*client.Client, error) {
	opts := []client.Opt{client.WithHTTPClient(httpClient(nil))}
	switch {
	case ep.Context != "":
		o, err := contextOpts(ep.Context)
		if err != nil {
			return nil, fmt.Errorf("environment %s: docker context %s: %w", env.Name, ep.Context, err)
		}
		opts = append(opts, o...)
	case ep.Host == "":
		// FromEnv sets the host only when DOCKER_HOST is set: the default
		// socket must be set on the transport given above, or it would dial
		// its path as a TCP host name.
		opts = append(opts, client.FromEnv)
		if getenv("DOCKER_HOST") == "" {
			opts = append(opts, client.WithHost(client.DefaultDockerHost))
		}
	case strings.HasPrefix(ep.Host, "ssh://"):
		if conn.cleanup == nil {
			flags, cleanup, err := sshFlags(prefix, getenv)
			if err != nil {
				return nil, err
			}
			conn.cleanup, conn.sshFlags = cleanup, flags
		}
		helper, err := connhelper.GetConnectionHelperWithSSHOpts(ep.Host, conn.sshFlags)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", ep.Host, err)
		}
		hc := httpClient(nil)
		hc.Transport.(*http.Transport).DialContext = helper.Dialer
		opts = []client.Opt{client.WithHTTPClient(hc), client.WithHost(helper.Host), client.WithDialContext(helper.Dialer)}
	case strings.HasPrefix(ep.Host, "tcp://"):
		tlsCfg, err := tlsConfig(prefix, getenv)
		if err != nil {
			return nil, err
		}
		if tlsCfg == nil {
			if err := plainTCPAllowed(env, ep); err != nil {
				return nil, err
			}
			opts = append(opts, client.WithHost(ep.Host))
			break
		}
		opts = []client.Opt{client.WithHTTPClient(httpClient(tlsCfg)), client.WithHost(ep.Host), client.WithScheme("https")}
	default:
		opts = append(opts, client.WithHost(ep.Host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", ep, err)
	}
	return c, nil
}

// httpClient is the transport every connection uses: a bounded wait for
// the engine's answer, and TLS when given.
func httpClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:       tlsCfg,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: ResponseTimeout,
			MaxIdleConns:          6,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: client.CheckRedirect,
	}
}

// plainTCPAllowed refuses a tcp:// endpoint without TLS unless it is on
// loopback or the environment opted out: every secret a deploy creates
// would cross the network in clear. A CI secret left undefined arrives
// empty, which must not quietly turn TLS off.
func plainTCPAllowed(env *envfile.Environment, ep Endpoint) error {
	u, err := url.Parse(ep.Host)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.Host, err)
	}
	if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
		return nil
	}
	if env.InsecureTCP && !env.Protected {
		return nil
	}
	return fmt.Errorf("environment %s: endpoint %s (%s) is tcp:// without TLS, which would send secrets in clear: set DEPLOY_TLS_CA, DEPLOY_TLS_CERT and DEPLOY_TLS_KEY (or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH), or, on a network you trust and for an environment that is not protected, insecure_tcp: true in %s",
		env.Name, ep.Host, ep.Source, envfile.DefaultPath)
}

// sshFlags writes DEPLOY_SSH_KEY (and DEPLOY_SSH_KNOWN_HOSTS) to a private
// temporary directory for ssh to read. Without a key, ssh uses its agent
// and ~/.ssh as usual.
func sshFlags(prefix string, getenv func(string) string) ([]string, func(), error) {
	key, known := getenv(prefix+"SSH_KEY"), getenv(prefix+"SSH_KNOWN_HOSTS")
	if key == "" && known == "" {
		return nil, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "deploy-ssh-")
	if err != nil {
		return nil, nil, fmt.Errorf("%sSSH_KEY: %w", prefix, err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	var flags []string
	if key != "" {
		if !strings.HasSuffix(key, "\n") {
			key += "\n" // ssh refuses a key file without the final newline
		}
		f := filepath.Join(dir, "key")
		if err := os.WriteFile(f, []byte(key), 0o600); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("%sSSH_KEY: %w", prefix, err)
		}
		flags = append(flags, "-i", f, "-o IdentitiesOnly=yes")
	}
	if known != "" {
		f := filepath.Join(dir, "known_hosts")
		if err := os.WriteFile(f, []byte(known+"\n"), 0o600); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("%sSSH_KNOWN_HOSTS: %w", prefix, err)
		}
		flags = append(flags, "-o UserKnownHostsFile="+f, "-o StrictHostKeyChecking=yes")
	}
	return flags, cleanup, nil
}

// tlsConfig builds a client TLS configuration from DEPLOY_TLS_CA,
// DEPLOY_TLS_CERT and DEPLOY_TLS_KEY (PEM text), or else, as the docker CLI
// does, from ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH when
// DOCKER_TLS_VERIFY is set; nil when neither is.
func tlsConfig(prefix string, getenv func(string) string) (*tls.Config, error) {
	ca, cert, key := getenv(prefix+"TLS_CA"), getenv(prefix+"TLS_CERT"), getenv(prefix+"TLS_KEY")
	source := prefix + "TLS_"
	if ca == "" && cert == "" && key == "" {
		if getenv("DOCKER_TLS_VERIFY") == "" {
			return nil, nil
		}
		dir := getenv("DOCKER_CERT_PATH")
		if dir == "" {
			dir = config.Dir()
		}
		read := func(name string) (string, error) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return "", fmt.Errorf("DOCKER_TLS_VERIFY is set: %w", err)
			}
			return string(b), nil
		}
		var err error
		if ca, err = read("ca.pem"); err != nil {
			return nil, err
		}
		if cert, err = read("cert.pem"); err != nil {
			return nil, err
		}
		if key, err = read("key.pem"); err != nil {
			return nil, err
		}
		source = "DOCKER_CERT_PATH's "
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ca)) {
			return nil, fmt.Errorf("%sCA: no PEM certificate in it", source)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("set both %sCERT and %sKEY, or neither", source, source)
	}
	if cert != "" {
		pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
		if err != nil {
			// The error can quote neither: it only says what did not parse.
			return nil, fmt.Errorf("%sCERT/%sKEY: not a matching PEM certificate and key", source, source)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// contextOpts reads a Docker context from the CLI's context store.
func contextOpts(name string) ([]client.Opt, error) {
	s := store.New(config.ContextStoreDir(), store.NewConfig(
		func() any { return &command.DockerContext{} },
		store.EndpointTypeGetter(dockercontext.DockerEndpoint, func() any { return &dockercontext.EndpointMeta{} }),
	))
	meta, err := s.GetMetadata(name)
	if err != nil {
		return nil, err
	}
	epMeta, err := dockercontext.EndpointFromContext(meta)
	if err != nil {
		return nil, err
	}
	ep, err := dockercontext.WithTLSData(s, name, epMeta)
	if err != nil {
		return nil, err
	}
	opts, err := ep.ClientOpts()
	if err != nil {
		return nil, err
	}
	if len(opts) == 0 {
		return nil, errors.New("the context has no Docker endpoint")
	}
	return opts, nil
}
