package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/runner"
)

// Exit codes the deploy targets end with, for CI to branch on.
const (
	ExitDeployed = 0 // the change converged
	ExitRefused  = 1 // refused before any change: preflight, lock, bad input
	ExitRestored = 2 // failed; every touched service is back on its previous spec
	ExitBroken   = 3 // failed, and the restore did not converge either
)

// ExitError is an error with the exit code mage should end with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string   { return e.Err.Error() }
func (e *ExitError) Unwrap() error   { return e.Err }
func (e *ExitError) ExitStatus() int { return e.Code }

// Refused wraps err as a refusal (exit 1).
func Refused(err error) error { return &ExitError{Code: ExitRefused, Err: err} }

// Engine is the part of the Engine API a change uses: a Swarm manager's.
// The small interfaces it is made of are declared where they are used.
type Engine interface {
	ledger.Store
	jobAPI
	secretAPI
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	NodeList(ctx context.Context, options client.NodeListOptions) (client.NodeListResult, error)
	ServiceList(ctx context.Context, options client.ServiceListOptions) (client.ServiceListResult, error)
	ServiceUpdate(ctx context.Context, serviceID string, options client.ServiceUpdateOptions) (client.ServiceUpdateResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (client.NetworkCreateResult, error)
}

// Git is what a change knows of the working tree. Err is why git could
// not tell (no repository, say): a protected deploy refuses then.
type Git struct {
	SHA        string
	Changes    []string // uncommitted changes: a protected deploy refuses them
	TagsAtHead []string
	Err        error
}

// Session is one environment opened for changes.
type Session struct {
	Env      *envfile.Environment
	Envs     envfile.Environments
	EnvFile  *envfile.File // for the records
	API      Engine
	Endpoint endpoint.Endpoint
	// Choose, when set, picks the manager to use among the environment's
	// endpoints (the first that answers as one), before the first call;
	// its notes say which it passed over.
	Choose   func(ctx context.Context) (endpoint.Endpoint, []string)
	Registry resolver
	Auth     authFunc
	Git      Git
	Who      string // user@host, or the CI run
	Out      io.Writer
	// Lookup reads ${NAME} in the environments file's variables.
	Lookup func(string) (string, bool)
	// Promotion opens the ledger of the environment a protected one
	// promotes from; the closer releases it.
	Promotion func(env *envfile.Environment) (ledger.Store, func(), error)
	// Head is the tag of HEAD's image, built and pushed first when build
	// is set (an environment with a local registry): what a deploy given
	// neither -image nor -version installs.
	Head func(ctx context.Context, build bool) (string, error)
	// Background is the context restores and records run in: it outlives
	// a first Ctrl-C (which cancels the change's own context) and ends on
	// a second. context.Background() when nil.
	Background context.Context
	// Poll is the convergence poll interval; 500ms when zero.
	Poll time.Duration
	// Webhook is the URL the environment's notify.url_env names, read from
	// the process environment: unset means no notifications.
	Webhook secret.Value
	// AfterConverge, when set, checks a change once its services
	// converged, instead of the smoke check (deploy:proxy asks Traefik);
	// an error fails the change, which is restored.
	AfterConverge func(ctx context.Context) error
	// LockWait is how long a change waits for a held lock before it is
	// refused (DEPLOY_LOCK_WAIT; 0, refuse at once): CI sets it so that two
	// pipelines meeting on one environment queue instead of failing.
	LockWait time.Duration
}

// failover picks the manager to use, once, and says which it passed over.
// Read-only targets call it first; a change calls it in its endpoint check.
func (s *Session) failover(ctx context.Context) []string {
	if s.Choose == nil {
		return nil
	}
	ep, notes := s.Choose(ctx)
	s.Endpoint, s.Choose = ep, nil
	return notes
}

// Ready picks the manager a read-only target uses and says so when it had
// to pass one over.
func (s *Session) Ready(ctx context.Context) {
	for _, n := range s.failover(ctx) {
		fmt.Fprintln(s.Out, "endpoint:", n)
	}
}

func (s *Session) bg() context.Context {
	if s.Background != nil {
		return s.Background
	}
	return context.Background()
}

// Setup is what Open needs from the process: the repository and its
// environment variables.
type Setup struct {
	Root   string // the repository root
	Getenv func(string) string
	Lookup func(string) (string, bool)
	Out    io.Writer
}

// ProcessSetup is the Setup of a mage target run in the repository root.
func ProcessSetup() Setup {
	return Setup{Root: ".", Getenv: os.Getenv, Lookup: os.LookupEnv, Out: os.Stdout}
}

// Environments loads the environments file: DEPLOY_ENVIRONMENTS_FILE when
// set (a file of your own, or a test's), else the repository's.
func (s Setup) Environments() (*envfile.File, error) {
	path := s.Getenv("DEPLOY_ENVIRONMENTS_FILE")
	if path == "" {
		path = filepath.Join(s.Root, envfile.DefaultPath)
	}
	return envfile.Load(path, s.Root)
}

// Open prepares a Session for the named environment: the file, a client
// for its endpoint (not dialled yet: whether it answers is a preflight
// check), the registry, the git facts and who is changing it. Close the
// returned Connection when done.
func Open(ctx context.Context, s Setup, name string) (*Session, *endpoint.Connection, error) {
	file, err := s.Environments()
	if err != nil {
		return nil, nil, Refused(err)
	}
	env, err := file.Get(name)
	if err != nil {
		return nil, nil, Refused(err)
	}
	wait := time.Duration(0)
	if v := s.Getenv("DEPLOY_LOCK_WAIT"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return nil, nil, Refused(fmt.Errorf("DEPLOY_LOCK_WAIT=%q: want a duration such as 15m", v))
		}
	}
	conn, err := endpoint.Connect(env, true, s.Getenv)
	if err != nil {
		return nil, nil, Refused(err)
	}
	var git Git
	if facts, err := gitinfo.Read(ctx, s.Root, s.Getenv); err != nil {
		git.Err = err
	} else {
		git = Git{SHA: facts.SHA, Changes: facts.Changes, TagsAtHead: facts.TagsAtHead}
	}
	reg := newRegistry(env.Image, s.Getenv, authn.DefaultKeychain)
	d := &Session{
		Env: env, Envs: file.Environments, EnvFile: file, API: conn, Endpoint: conn.Endpoint,
		Choose: func(ctx context.Context) (endpoint.Endpoint, []string) {
			notes := conn.Choose(ctx)
			return conn.Endpoint, notes
		},
		Registry: reg,
		Auth:     reg.EncodedAuth,
		Git:      git,
		Who:      Who(ctx, s.Root, s.Getenv),
		Out:      s.Out,
		Lookup:   s.Lookup,
		Promotion: func(src *envfile.Environment) (ledger.Store, func(), error) {
			c, err := endpoint.Connect(src, false, s.Getenv)
			if err != nil {
				return nil, nil, err
			}
			return c.Client, func() { _ = c.Close() }, nil
		},
		Head: func(ctx context.Context, build bool) (string, error) {
			if build {
				return buildAndPush(ctx, s, env, runner.Exec{})
			}
			return defaultTag(ctx, s)
		},
		LockWait: wait,
	}
	if env.Notify != nil {
		d.Webhook = secret.New(s.Getenv(env.Notify.URLEnv))
	}
	return d, conn, nil
}

// Who names the person or CI run making a change, for locks and records:
// the CI actor and run, or git's user.email (else user.name) @ host.
func Who(ctx context.Context, root string, getenv func(string) string) string {
	if actor := getenv("GITHUB_ACTOR"); actor != "" {
		who := "github:" + actor
		if id := getenv("GITHUB_RUN_ID"); id != "" {
			who += " run " + strings.TrimSuffix(getenv("GITHUB_SERVER_URL"), "/") + "/" + getenv("GITHUB_REPOSITORY") + "/actions/runs/" + id
		}
		return who
	}
	user, _ := runner.Output(ctx, runner.Command("git", "config", "user.email").InDir(root))
	if user == "" {
		user, _ = runner.Output(ctx, runner.Command("git", "config", "user.name").InDir(root))
	}
	if user == "" {
		user = cmpOr(getenv("USER"), "unknown")
	}
	host, _ := os.Hostname()
	return user + "@" + cmpOr(host, "unknown-host")
}

// registryHost is the registry part of an image repository.
func registryHost(repo string) string {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
