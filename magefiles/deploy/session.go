package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/dockerimage"
	"github.com/fractionate/service-template/magefiles/gitinfo"
	"github.com/fractionate/service-template/magefiles/release"
	"github.com/fractionate/service-template/magefiles/runner"
)

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
func (s Setup) Environments() (Environments, error) {
	path := s.Getenv("DEPLOY_ENVIRONMENTS_FILE")
	if path == "" {
		path = filepath.Join(s.Root, EnvironmentsFile)
	}
	return LoadEnvironments(path, s.Root)
}

// Open prepares a Deployer for the named environment: the file, a client
// for its endpoint, the registry, the git facts and who is deploying.
// Close the returned Connection when done.
func Open(ctx context.Context, s Setup, name string) (*Deployer, *Connection, error) {
	envs, err := s.Environments()
	if err != nil {
		return nil, nil, Refused(err)
	}
	env, err := envs.Get(name)
	if err != nil {
		return nil, nil, Refused(err)
	}
	conn, err := Connect(env, true, s.Getenv)
	if err != nil {
		return nil, nil, Refused(err)
	}
	facts, err := gitinfo.Read(ctx, s.Root, s.Getenv)
	if err != nil {
		_ = conn.Close()
		return nil, nil, Refused(err)
	}
	reg := &Registry{Getenv: s.Getenv, Keychain: authn.DefaultKeychain}
	d := &Deployer{
		Env: env, Envs: envs, API: conn.Client, Endpoint: conn.Endpoint.String(),
		Registry: reg,
		Auth: func(ctx context.Context, image string) (string, error) {
			named, err := reference.ParseNormalizedNamed(image)
			if err != nil {
				return "", err
			}
			host := reference.Domain(named)
			c, err := reg.Credentials(ctx, host)
			if err != nil {
				return "", err
			}
			return c.EncodedAuth(host)
		},
		Git:    Git{SHA: facts.SHA, Changes: facts.Changes, TagsAtHead: facts.TagsAtHead},
		Who:    Who(ctx, s.Root, s.Getenv),
		Out:    s.Out,
		Lookup: s.Lookup,
		Promotion: func(src *Environment) (client.APIClient, func(), error) {
			c, err := Connect(src, false, s.Getenv)
			if err != nil {
				return nil, nil, err
			}
			return c.Client, func() { _ = c.Close() }, nil
		},
	}
	if env.Notify != nil {
		d.Webhook = secret.New(s.Getenv(env.Notify.URLEnv))
	}
	if v := s.Getenv("DEPLOY_LOCK_WAIT"); v != "" {
		if d.LockWait, err = time.ParseDuration(v); err != nil || d.LockWait < 0 {
			_ = conn.Close()
			return nil, nil, Refused(fmt.Errorf("DEPLOY_LOCK_WAIT=%q: want a duration such as 15m", v))
		}
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

// DefaultTag is the tag HEAD's image has under the tag scheme: its release
// tag when HEAD carries one (what a protected environment runs), else the
// commit's own tag (abc1234, or abc1234-dirty).
func DefaultTag(ctx context.Context, s Setup) (string, error) {
	facts, tags, _, err := dockerimage.Tags(ctx, s.Root, s.Getenv)
	if err != nil {
		return "", err
	}
	if !facts.Dirty() {
		for _, t := range facts.TagsAtHead {
			if v, ok := release.ParseTag(t); ok && v.Metadata() == "" {
				return t, nil
			}
		}
	}
	if len(tags) == 0 {
		return "", fmt.Errorf("HEAD's image has no tag")
	}
	return tags[0], nil
}

// BuildAndPush builds HEAD's image into env's repository and pushes it:
// what deploy:to does for an environment with a local registry. It
// returns the commit's tag.
func BuildAndPush(ctx context.Context, s Setup, env *Environment, r runner.Runner) (string, error) {
	named, err := reference.ParseNormalizedNamed(env.Image)
	if err != nil {
		return "", err
	}
	getenv := func(k string) string {
		switch k {
		case "REGISTRY":
			return reference.Domain(named)
		case "IMAGE_NAME":
			return reference.Path(named)
		}
		return s.Getenv(k)
	}
	plan, warnings, err := dockerimage.ResolvePlan(ctx, s.Root, "", getenv)
	for _, w := range warnings {
		fmt.Fprintln(s.Out, "warning:", w)
	}
	if err != nil {
		return "", err
	}
	plan.Out = io.Discard
	cli, err := dockerimage.NewClient()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	fmt.Fprintf(s.Out, "Building %s:%s\n", plan.Repository, plan.Tags[0])
	built, err := dockerimage.BuildImage(ctx, r, cli, plan)
	if err != nil {
		return "", err
	}
	creds, err := dockerimage.ResolveCredentials(ctx, reference.Domain(named), s.Getenv, authn.DefaultKeychain)
	if err != nil {
		return "", err
	}
	pushed, err := dockerimage.Push(ctx, cli, built.Refs, creds, io.Discard)
	if err != nil {
		return "", err
	}
	for _, p := range pushed {
		fmt.Fprintln(s.Out, "Pushed", p)
	}
	return plan.Tags[0], nil
}

// Interruptible returns a context cancelled by the first Ctrl-C (or
// SIGTERM), which stops a change and starts its restore, and a second one
// cancelled by the next signal, which abandons the restore. It takes the
// signals from mage, which would otherwise end the process 5 seconds after
// a Ctrl-C, long before a restore converges.
func Interruptible(parent context.Context, out io.Writer) (soft, hard context.Context, stop func()) {
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(parent))
	softCtx, softCancel := context.WithCancel(parent)
	signal.Ignore(os.Interrupt) // unhooks mage's own handler
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				n++
				if n == 1 {
					fmt.Fprintf(out, "\n%s: stopping; the services this change touched are restored (again to abandon the restore)\n", sig)
					softCancel()
				} else {
					fmt.Fprintf(out, "\n%s: abandoning the restore; the stack may be half-restored\n", sig)
					hardCancel()
				}
			}
		}
	}()
	return softCtx, hardCtx, func() {
		close(done)
		signal.Stop(ch)
		softCancel()
		hardCancel()
	}
}
