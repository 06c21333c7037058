//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/magefiles/deploy"
	"github.com/fractionate/service-template/magefiles/deploy/endpoint"
)

// Deploy puts releases on a Docker Swarm (environments in deploy/environments.yml).
// Exit codes: 0 deployed; 1 refused before any change; 2 failed and the
// previous release serves again; 3 failed and the stack could not be restored.
type Deploy mg.Namespace

// Installs a release on staging: HEAD's image, or the one -image or -version names.
func (Deploy) Staging(ctx context.Context,
	image *string, // a reference in staging's repository: repo:tag, repo@sha256:..., or both
	version *string, // a tag of staging's repository, like v1.2.3
	dryRun *bool, // print the preflight and the plan; change nothing
) error {
	return deployTo(ctx, "staging", image, version, dryRun, nil)
}

// Installs HEAD's release tag on production, which must have served on staging first.
func (Deploy) Production(ctx context.Context,
	image *string, // a reference in production's repository (tag or digest) instead of HEAD's release
	version *string, // a release tag instead of HEAD's
	dryRun *bool, // print the preflight and the plan; change nothing
	override *string, // a reason to skip the protected-environment checks; recorded in the history
) error {
	return deployTo(ctx, "production", image, version, dryRun, override)
}

// Installs a release on <env>: HEAD's image (built and pushed first where the environment has a local registry), or -image / -version.
func (Deploy) To(ctx context.Context, env string,
	image *string, // a reference in the environment's repository: repo:tag, repo@sha256:..., or both
	version *string, // a tag of the environment's repository, like v1.2.3
	dryRun *bool, // print the preflight and the plan; change nothing (nothing is built either)
	override *string, // a protected environment only: a reason to skip its checks; recorded in the history
) error {
	return deployTo(ctx, env, image, version, dryRun, override)
}

// Puts <env> back on the last successful release before the one it runs.
func (Deploy) Rollback(ctx context.Context, env string,
	dryRun *bool, // print the preflight and the plan; change nothing
) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Rollback(ctx, "", flag(dryRun))
	})
}

// Puts <env> back on a recorded successful release: <to> is a version (v1.2.3), a git commit (7+ characters) or a record's number as deploy:history shows it (3, or #3 quoted: # starts a shell comment).
func (Deploy) RollbackTo(ctx context.Context, env, to string,
	dryRun *bool, // print the preflight and the plan; change nothing
) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Rollback(ctx, to, flag(dryRun))
	})
}

// Sets the replicas of <service> in <env> and waits for them.
func (Deploy) Scale(ctx context.Context, env, service, replicas string,
	dryRun *bool, // print the preflight and the plan; change nothing
) error {
	// Parsed here rather than by mage, whose own error would exit 2, the
	// code that means "failed and restored".
	n, err := strconv.Atoi(replicas)
	if err != nil {
		return deploy.Refused(fmt.Errorf("deploy:scale: replicas %q is not a whole number", replicas))
	}
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Scale(ctx, service, n, flag(dryRun))
	})
}

// Lists <env>'s deploys, rollbacks, scales and rotations, newest first.
func (Deploy) History(ctx context.Context, env string) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.History(ctx, os.Stdout)
	})
}

// Shows <env>'s services (release, replicas, update state, nodes), the schema, the last change and the lock.
func (Deploy) Status(ctx context.Context, env string) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Status(ctx, os.Stdout)
	})
}

// Prints <env>'s logs, each line prefixed by its task and node.
func (Deploy) Logs(ctx context.Context, env string,
	service *string, // one service's logs only
	since *string, // from this long ago (10m) or this time (RFC 3339)
	follow *bool, // keep streaming new lines
	tail *string, // the last N lines of each service ("all" by default)
) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Logs(ctx, deploy.LogOptions{Service: str(service), Since: str(since), Follow: flag(follow), Tail: str(tail)}, os.Stdout)
	})
}

// Shows who holds <env>'s deploy lock, since when and doing what.
func (Deploy) Lock(ctx context.Context, env string) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.ShowLock(ctx, os.Stdout)
	})
}

// Breaks <env>'s deploy lock, when it is older than the longest a working change holds it.
func (Deploy) Unlock(ctx context.Context, env string,
	force *bool, // break it whatever its age (its holder may still be working)
	dryRun *bool, // say whose lock it would break; change nothing
) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Unlock(ctx, flag(force), flag(dryRun))
	})
}

// Prepares a local <env> on this machine: makes the engine a single-node Swarm, starts its registry (REGISTRY_IMAGE) and creates missing secrets.
func (Deploy) Init(ctx context.Context, env string,
	dryRun *bool, // say what it would do; change nothing
) error {
	s := deploy.ProcessSetup()
	file, err := s.Environments()
	if err != nil {
		return deploy.Refused(err)
	}
	e, err := file.Get(env)
	if err != nil {
		return deploy.Refused(err)
	}
	conn, err := endpoint.Connect(e, true, s.Getenv)
	if err != nil {
		return deploy.Refused(err)
	}
	defer conn.Close()
	return deploy.Init(ctx, conn.Client, e, deploy.InitOptions{RegistryImage: os.Getenv("REGISTRY_IMAGE"), Out: os.Stdout, DryRun: flag(dryRun), Endpoint: conn.Endpoint})
}

func deployTo(ctx context.Context, env string, image, version *string, dryRun *bool, override *string) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Deploy(ctx, deploy.DeployOptions{Image: str(image), Version: str(version), DryRun: flag(dryRun), Override: str(override)})
	})
}

// withSession opens env, runs fn with Ctrl-C handled by the change (a
// first one restores, a second abandons the restore), and closes it.
func withSession(ctx context.Context, env string, fn func(context.Context, *deploy.Session) error) error {
	s, conn, err := deploy.Open(ctx, deploy.ProcessSetup(), env)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Only now: mage installs its own Ctrl-C handler just after starting
	// the target, and Interruptible must replace it, not precede it.
	soft, hard, stop := deploy.Interruptible(ctx, os.Stderr)
	defer stop()
	s.Background = hard
	start := time.Now()
	err = fn(soft, s)
	if mg.Verbose() {
		fmt.Fprintf(os.Stderr, "deploy: %s in %s\n", env, time.Since(start).Round(time.Millisecond))
	}
	return err
}

func flag(b *bool) bool { return b != nil && *b }

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Prepares <env>'s Swarm for its first deploy: checks the manager, nodes, placement and image pull; makes missing secrets (asked for on a terminal, -secret=NAME from a pipe, or generated per init_secrets) and external networks; lists the CI secrets.
func (Deploy) Setup(ctx context.Context, env string,
	secret *string, // the secret whose value standard input holds (one per run): printf '%s' "$VALUE" | go tool mage deploy:setup ENV -secret=NAME
	image *string, // the image whose pull is checked, in the environment's repository (HEAD's by default)
	dryRun *bool, // say what it would do; read no value, make nothing
) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Setup(ctx, deploy.SetupOptions{Secret: str(secret), Image: str(image), DryRun: flag(dryRun),
			Input: deploy.StdinSecrets(os.Stdin, os.Stderr), Workflow: deploy.DefaultWorkflow})
	})
}

// Deploys or upgrades the front proxy (deploy/proxy.yml: Traefik, HTTPS) on <env>'s Swarm, a stack of its own shared by the stacks there: makes traefik-public, labels the node that keeps the certificates, and checks Traefik answers.
func (Deploy) Proxy(ctx context.Context, env string,
	dryRun *bool, // print the preflight and the plan; change nothing
) error {
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Proxy(ctx, deploy.ProxyOptions{Root: ".", DryRun: flag(dryRun)})
	})
}

// Shows, per task of <env>'s app, CPU % of its limit, memory % of its limit, requests/s, latency p50/p99 and pool use, judged against the deployment standard's scaling guide with its advice; read by a job on the stack's network.
func (Deploy) Top(ctx context.Context, env string,
	watch *bool, // repeat every 5s until Ctrl-C, judging the last minute
	svg *string, // also plot CPU, pool use and p99 over time into this SVG file
	window *string, // a single run's span between its two samples (default 15s)
) error {
	var w time.Duration
	if s := str(window); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second || d > 10*time.Minute {
			return deploy.Refused(fmt.Errorf("deploy:top: -window=%q: want a duration from 1s to 10m, like 30s", s))
		}
		w = d
	}
	return withSession(ctx, env, func(ctx context.Context, s *deploy.Session) error {
		return s.Top(ctx, deploy.TopOptions{Watch: flag(watch), SVG: str(svg), Window: w}, os.Stdout)
	})
}
