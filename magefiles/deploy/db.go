package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// appService is the spec of the first service (by name) that runs the
// environment's image: what a job against its database copies (network,
// secrets, environment), from the image it runs now.
func (s *Session) appService(ctx context.Context) (string, swarm.ServiceSpec, error) {
	live, err := readLive(ctx, s.API, s.Env.Stack)
	if err != nil {
		return "", swarm.ServiceSpec{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(live.Services)) {
		if spec := live.Services[name].Spec; ImageOf(spec).Repository == s.Env.Image {
			return name, spec, nil
		}
	}
	return "", swarm.ServiceSpec{}, Refused(fmt.Errorf("no service of stack %s runs %s: deploy first (go tool mage deploy:to %s)", s.Env.Stack, s.Env.Image, s.Env.Name))
}

// DBStatus prints the migration status of the environment's database,
// asked by a job running `app migrate status` from the image the app runs
// now, on the stack's network with its secrets: the database's port is
// never opened to this machine.
func (s *Session) DBStatus(ctx context.Context, w io.Writer) error {
	s.Ready(ctx)
	name, spec, err := s.appService(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Migrations of %s's database, as %s (%s) knows them, asked by a job on stack %s's network:\n", s.Env.Name, name, ImageOf(spec).Short(), s.Env.Stack)
	out, err := s.runJob(ctx, spec, JobOptions{Purpose: "migrate-status", Args: []string{"migrate", "status"}, Deadline: 2 * time.Minute, Warn: w})
	fmt.Fprint(w, out)
	return err
}

// DBMigrate applies the pending migrations of the release the app runs
// now, once, by the deploy's migration job and under its lock. A deploy
// does this itself; this is for a database restored from a backup, say.
func (s *Session) DBMigrate(ctx context.Context) error {
	s.Ready(ctx)
	release, err := s.holdLock(ctx, "db:migrate of "+s.Env.Name)
	if err != nil {
		return err
	}
	defer release()
	name, spec, err := s.appService(ctx)
	if err != nil {
		return err
	}
	removeLeftoverJobs(ctx, s.API, s.Env.Stack, "migrate", s.Out)
	fmt.Fprintf(s.Out, "Migrations: running app migrate up from %s (%s), once, as a job on stack %s's network\n", name, ImageOf(spec).Short(), s.Env.Stack)
	start := time.Now()
	if _, err := s.runJob(ctx, spec, JobOptions{Purpose: "migrate", Args: []string{"migrate", "up"}, Deadline: s.Env.Deadline, Out: s.Out}); err != nil {
		return fmt.Errorf("migrations failed: %w", err)
	}
	fmt.Fprintf(s.Out, "Migrations: done in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}
