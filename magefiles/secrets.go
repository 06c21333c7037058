//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy"
)

// Secrets manages an environment's versioned Swarm secrets. A value is read
// from standard input (without echo on a terminal), never from an argument,
// and never shown.
type Secrets mg.Namespace

// Creates the next version of secret <name> of <env> from standard input; the next deploy moves the services to it.
func (Secrets) Set(ctx context.Context, env, name string) error {
	return withSession(ctx, env, func(ctx context.Context, d *deploy.Session) error {
		if err := d.CheckSecretName(name); err != nil {
			return err
		}
		v, err := deploy.ReadSecret(os.Stdin, os.Stderr, name)
		if err != nil {
			return deploy.Refused(err)
		}
		made, err := d.SetSecret(ctx, name, v)
		if err != nil {
			return err
		}
		fmt.Printf("created %s; %s\n", made.Name, d.NextStep(name))
		return nil
	})
}

// Creates the next version of secret <name> of <env> from standard input and deploys just that: the services using it move there with a rolling update.
func (Secrets) Rotate(ctx context.Context, env, name string,
	dryRun *bool, // print the preflight and the plan; read nothing, create nothing
) error {
	return withSession(ctx, env, func(ctx context.Context, d *deploy.Session) error {
		if err := d.CheckSecretName(name); err != nil {
			return err
		}
		var v secret.Value
		if !flag(dryRun) {
			var err error
			if v, err = deploy.ReadSecret(os.Stdin, os.Stderr, name); err != nil {
				return deploy.Refused(err)
			}
		}
		return d.Rotate(ctx, name, v, flag(dryRun))
	})
}

// Shows <env>'s secrets: each version, when it was made and which services use it; never a value.
func (Secrets) List(ctx context.Context, env string) error {
	return withSession(ctx, env, func(ctx context.Context, d *deploy.Session) error {
		return d.ListSecrets(ctx, os.Stdout)
	})
}

// Removes versions of <env>'s secrets that no service uses, keeping the newest of each.
func (Secrets) Prune(ctx context.Context, env string,
	keep *int, // how many of the newest versions of each secret stay, used or not (default 2)
	dryRun *bool, // say what it would remove; remove nothing
) error {
	n := 2
	if keep != nil {
		n = *keep
	}
	return withSession(ctx, env, func(ctx context.Context, d *deploy.Session) error {
		return d.PruneSecrets(ctx, n, flag(dryRun))
	})
}
