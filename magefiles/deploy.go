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
)

// Deploy puts releases on a Docker Swarm (environments in deploy/environments.yml).
// Exit codes: 0 deployed; 1 refused before any change; 2 failed and the
// previous release serves again; 3 failed and the stack could not be restored.
type Deploy mg.Namespace

// Staging deploys to staging: HEAD's image, or -image=ref / -version=tag (-dryrun prints the plan).
func (Deploy) Staging(ctx context.Context, image, version *string, dryRun *bool) error {
	return deployTo(ctx, "staging", image, version, dryRun, nil)
}

// Production deploys HEAD's release tag to production, which it must have run on staging first (-image, -dryrun, -override=reason).
func (Deploy) Production(ctx context.Context, image, version *string, dryRun *bool, override *string) error {
	return deployTo(ctx, "production", image, version, dryRun, override)
}

// To deploys to <env>: HEAD's image (built and pushed first where the environment has a local registry), or -image / -version.
func (Deploy) To(ctx context.Context, env string, image, version *string, dryRun *bool, override *string) error {
	return deployTo(ctx, env, image, version, dryRun, override)
}

// Rollback puts <env> back on the last successful release before the current one (-dryrun).
func (Deploy) Rollback(ctx context.Context, env string, dryRun *bool) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		return d.Rollback(ctx, "", flag(dryRun))
	})
}

// RollbackTo puts <env> back on a recorded successful release: <version>, <git sha> or #N (-dryrun).
func (Deploy) RollbackTo(ctx context.Context, env, to string, dryRun *bool) error {
	if to == "" {
		return deploy.Refused(fmt.Errorf("deploy:rollbackTo: name a version, a git commit or #N (see deploy:history %s)", env))
	}
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		return d.Rollback(ctx, to, flag(dryRun))
	})
}

// Scale sets the replicas of <service> in <env> and waits for them (-dryrun).
func (Deploy) Scale(ctx context.Context, env, service, replicas string, dryRun *bool) error {
	// Parsed here rather than by mage, whose own error would exit 2, the
	// code that means "failed and restored".
	n, err := strconv.Atoi(replicas)
	if err != nil {
		return deploy.Refused(fmt.Errorf("deploy:scale: replicas %q is not a whole number", replicas))
	}
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		return d.Scale(ctx, service, n, flag(dryRun))
	})
}

// History lists <env>'s deploys, rollbacks and scales, newest first.
func (Deploy) History(ctx context.Context, env string) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		records, err := deploy.History{API: d.API, Stack: d.Env.Stack}.List(ctx)
		if err != nil {
			return err
		}
		return deploy.PrintHistory(os.Stdout, records)
	})
}

// Status shows <env>'s services (release, replicas, update state, nodes), the last change and the lock.
func (Deploy) Status(ctx context.Context, env string) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		return d.Status(ctx, os.Stdout)
	})
}

// Logs prints <env>'s logs, each line prefixed by its task (-service=name, -since=10m, -follow, -tail=N).
func (Deploy) Logs(ctx context.Context, env string, service, since *string, follow *bool, tail *string) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		return d.Logs(ctx, deploy.LogOptions{Service: str(service), Since: str(since), Follow: flag(follow), Tail: str(tail)}, os.Stdout)
	})
}

// Lock shows who holds <env>'s deploy lock, since when and doing what.
func (Deploy) Lock(ctx context.Context, env string) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		held, _, err := deploy.Lock{API: d.API, Stack: d.Env.Stack}.Read(ctx)
		switch {
		case err != nil:
			return err
		case held == nil:
			fmt.Println("free")
		default:
			fmt.Println(held)
		}
		return nil
	})
}

// Unlock breaks <env>'s deploy lock; one younger than twice the deadline only with -force (-dryrun shows the holder only).
func (Deploy) Unlock(ctx context.Context, env string, force, dryRun *bool) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		lock := deploy.Lock{API: d.API, Stack: d.Env.Stack}
		if flag(dryRun) {
			held, _, err := lock.Read(ctx)
			if err != nil {
				return err
			}
			if held == nil {
				fmt.Println("the lock is free: nothing to break")
			} else {
				fmt.Println("would break the lock", held)
			}
			fmt.Println("Dry run: nothing was changed.")
			return nil
		}
		held, err := lock.Break(ctx, 2*d.Env.Deadline, flag(force))
		if err != nil {
			return deploy.Refused(err)
		}
		if held == nil {
			fmt.Println("the lock was free")
		} else {
			fmt.Println("broke the lock", held)
		}
		return nil
	})
}

// Init prepares a local <env> on this machine: makes the engine a single-node Swarm, starts its registry (REGISTRY_IMAGE) and creates missing secrets (-dryrun).
func (Deploy) Init(ctx context.Context, env string, dryRun *bool) error {
	s := deploy.ProcessSetup()
	envs, err := s.Environments()
	if err != nil {
		return deploy.Refused(err)
	}
	e, err := envs.Get(env)
	if err != nil {
		return deploy.Refused(err)
	}
	conn, err := deploy.Connect(e, true, s.Getenv)
	if err != nil {
		return deploy.Refused(err)
	}
	defer conn.Close()
	return deploy.Init(ctx, conn.Client, e, deploy.InitOptions{RegistryImage: os.Getenv("REGISTRY_IMAGE"), Out: os.Stdout, DryRun: flag(dryRun), Endpoint: conn.Endpoint})
}

func deployTo(ctx context.Context, env string, image, version *string, dryRun *bool, override *string) error {
	return withDeployer(ctx, env, func(ctx context.Context, d *deploy.Deployer) error {
		o := deploy.DeployOptions{Image: str(image), Version: str(version), DryRun: flag(dryRun), Override: str(override)}
		if o.Image == "" && o.Version == "" {
			s := deploy.ProcessSetup()
			var err error
			if d.Env.Registry != nil && !o.DryRun {
				o.Default, err = deploy.BuildAndPush(ctx, s, d.Env, exec())
			} else {
				o.Default, err = deploy.DefaultTag(ctx, s)
			}
			if err != nil {
				return deploy.Refused(err)
			}
		}
		return d.Deploy(ctx, o)
	})
}

// withDeployer opens env, runs fn with Ctrl-C handled by the deploy (a
// first one restores, a second abandons the restore), and closes it.
func withDeployer(ctx context.Context, env string, fn func(context.Context, *deploy.Deployer) error) error {
	d, conn, err := deploy.Open(ctx, deploy.ProcessSetup(), env)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Only now: mage installs its own Ctrl-C handler just after starting
	// the target, and Interruptible must replace it, not precede it.
	soft, hard, stop := deploy.Interruptible(ctx, os.Stderr)
	defer stop()
	d.Background = hard
	start := time.Now()
	err = fn(soft, d)
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
