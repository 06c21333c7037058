package deploy

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/connhelper"
	dockercontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/moby/moby/client"
)

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
	*client.Client
	Endpoint Endpoint
	cleanup  func()
}

// Close closes the client and removes temporary credentials.
func (c *Connection) Close() error {
	err := c.Client.Close()
	if c.cleanup != nil {
		c.cleanup()
	}
	return err
}

// Connect opens a client for env's endpoint. With target set (the
// environment being deployed), DEPLOY_HOST and the DEPLOY_SSH_* and
// DEPLOY_TLS_* variables apply; for another environment (the one a release
// is promoted from) the same variables are read with the environment's name
// in them: DEPLOY_STAGING_HOST, DEPLOY_STAGING_SSH_KEY...
//
// Key material from the environment is written nowhere but a temporary file
// only this user can read, removed by Close (ssh needs a file); TLS material
// stays in memory.
func Connect(env *Environment, target bool, getenv func(string) string) (*Connection, error) {
	prefix := "DEPLOY_"
	if !target {
		prefix = "DEPLOY_" + strings.ToUpper(strings.ReplaceAll(env.Name, "-", "_")) + "_"
	}
	ep := Endpoint{Host: env.Endpoint, Source: "environments file", Context: env.Context}
	if h := getenv(prefix + "HOST"); h != "" {
		ep = Endpoint{Host: h, Source: prefix + "HOST"}
		if err := checkEndpoint(h); err != nil {
			return nil, fmt.Errorf("%sHOST: %w", prefix, err)
		}
	}
	conn := &Connection{Endpoint: ep}
	var opts []client.Opt
	switch {
	case ep.Context != "":
		o, err := contextOpts(ep.Context)
		if err != nil {
			return nil, fmt.Errorf("environment %s: docker context %s: %w", env.Name, ep.Context, err)
		}
		opts = o
	case ep.Host == "":
		opts = []client.Opt{client.FromEnv}
	case strings.HasPrefix(ep.Host, "ssh://"):
		flags, cleanup, err := sshFlags(prefix, getenv)
		if err != nil {
			return nil, err
		}
		conn.cleanup = cleanup
		helper, err := connhelper.GetConnectionHelperWithSSHOpts(ep.Host, flags)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("endpoint %s: %w", ep.Host, err)
		}
		opts = []client.Opt{
			client.WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: helper.Dialer}}),
			client.WithHost(helper.Host),
			client.WithDialContext(helper.Dialer),
		}
	case strings.HasPrefix(ep.Host, "tcp://"):
		tlsCfg, err := tlsConfig(prefix, getenv)
		if err != nil {
			return nil, err
		}
		opts = []client.Opt{client.WithHost(ep.Host)}
		if tlsCfg != nil {
			opts = append(opts, client.WithHTTPClient(&http.Client{
				Transport: &http.Transport{
					TLSClientConfig: tlsCfg,
					DialContext:     (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				},
				CheckRedirect: client.CheckRedirect,
			}), client.WithScheme("https"))
		}
	default:
		opts = []client.Opt{client.WithHost(ep.Host)}
	}
	c, err := client.New(opts...)
	if err != nil {
		if conn.cleanup != nil {
			conn.cleanup()
		}
		return nil, fmt.Errorf("docker client for %s: %w", ep, err)
	}
	conn.Client = c
	return conn, nil
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
// DEPLOY_TLS_CERT and DEPLOY_TLS_KEY (PEM text); nil when none is set.
func tlsConfig(prefix string, getenv func(string) string) (*tls.Config, error) {
	ca, cert, key := getenv(prefix+"TLS_CA"), getenv(prefix+"TLS_CERT"), getenv(prefix+"TLS_KEY")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ca)) {
			return nil, fmt.Errorf("%sTLS_CA: no PEM certificate in it", prefix)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("set both %sTLS_CERT and %sTLS_KEY, or neither", prefix, prefix)
	}
	if cert != "" {
		pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
		if err != nil {
			// The error can quote neither: it only says what did not parse.
			return nil, fmt.Errorf("%sTLS_CERT/%sTLS_KEY: not a matching PEM certificate and key", prefix, prefix)
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
