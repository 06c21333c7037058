package deploy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Migrations is what a deploy's plan says of the release's migrations,
// asked of the database by a job running the release's `app migrate
// status` on the stack's network with its secrets (the deploying machine
// never opens the database's port).
type Migrations struct {
	Asked   bool     // the job answered
	Applied []string // migration files the database has, of those the release knows
	Pending []string // the release's files the database lacks, in order
	Note    string   // why the database was not asked, or what went wrong
	Took    time.Duration
}

// statusLine is one line of `app migrate status`: "pending  00003_x.sql".
var statusLine = regexp.MustCompile(`^(applied|pending)\s+(\S+\.sql)\s*$`)

// parseMigrateStatus reads `app migrate status` output; lines that are not
// status lines (logs) are skipped.
func parseMigrateStatus(out string) (applied, pending []string) {
	for _, line := range strings.Split(out, "\n") {
		m := statusLine.FindStringSubmatch(strings.TrimSpace(line))
		switch {
		case m == nil:
		case m[1] == "applied":
			applied = append(applied, m[2])
		default:
			pending = append(pending, m[2])
		}
	}
	return applied, pending
}

// askMigrations asks the database which of the release's migrations are
// pending, by a job from the release's image. nil when the plan runs no
// migration (the release's image does not change, or a rollback).
func (s *Session) askMigrations(ctx context.Context, plan *Plan) *Migrations {
	deps, app := splitByImage(plan.Touched(), s.Env.Image)
	base, ok := migrationBase(app, s.Env.Image)
	if !ok {
		return nil
	}
	for _, c := range deps {
		if c.Action == Create {
			return &Migrations{Note: fmt.Sprintf("service %s is created by this deploy: every migration of the release is pending", c.Name)}
		}
	}
	if len(plan.CreateNetworks) > 0 {
		return &Migrations{Note: "the stack's networks are created by this deploy: every migration of the release is pending"}
	}
	start := time.Now()
	out, err := s.runJob(ctx, base, JobOptions{
		Purpose: "migrate-status", Args: []string{"migrate", "status"},
		Deadline: min(s.Env.Deadline, 2*time.Minute), Warn: s.Out,
	})
	m := &Migrations{Took: time.Since(start)}
	if err != nil {
		m.Note = fmt.Sprintf("the status job failed (%v)%s", err, lastLine(out))
		return m
	}
	m.Asked = true
	m.Applied, m.Pending = parseMigrateStatus(out)
	if len(m.Applied)+len(m.Pending) == 0 {
		m.Asked, m.Note = false, "the status job listed no migration"+lastLine(out)
	}
	return m
}

// migrate runs the release's migrations once, as a job from base, the
// release's spec. It is skipped when the plan asked a moment ago, under
// the lock, and found none pending.
func (s *Session) migrate(ctx context.Context, plan *Plan, base swarm.ServiceSpec) error {
	if m := plan.Migrations; m != nil && m.Asked && len(m.Pending) == 0 {
		fmt.Fprintln(s.Out, "Migrations: none pending")
		return nil
	}
	removeLeftoverJobs(ctx, s.API, s.Env.Stack, "migrate", s.Out)
	fmt.Fprintf(s.Out, "Migrations: running %s once, as a job on the stack's network\n", "app migrate up")
	start := time.Now()
	out, err := s.runJob(ctx, base, JobOptions{Purpose: "migrate", Args: []string{"migrate", "up"}, Deadline: s.Env.Deadline, Out: s.Out})
	if err != nil {
		// The migration's own error, for the record and the notification:
		// the job's is only its exit code.
		if last := strings.TrimPrefix(lastLine(out), ": "); last != "" {
			err = fmt.Errorf("%s (%w)", last, err)
		}
		return &migrationError{err}
	}
	fmt.Fprintf(s.Out, "Migrations: done in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// migrationError is a failed migration job: the deploy stops there.
type migrationError struct{ err error }

func (e *migrationError) Error() string { return "migrations failed: " + e.err.Error() }
func (e *migrationError) Unwrap() error { return e.err }

// migrationBase is the spec the migration job copies: the first created or
// updated service that runs a new image of the release's repository. None
// when the release's image does not change.
func migrationBase(changes []ServiceChange, repo string) (swarm.ServiceSpec, bool) {
	for _, c := range changes {
		if c.New == nil || ImageOf(*c.New).Repository != repo {
			continue
		}
		if c.Old == nil || ImageOf(*c.Old).Digest != ImageOf(*c.New).Digest {
			return *c.New, true
		}
	}
	return swarm.ServiceSpec{}, false
}

// Print writes the plan's migration line.
func (m *Migrations) Print(w io.Writer) {
	if m == nil {
		return
	}
	switch {
	case !m.Asked:
		fmt.Fprintf(w, "  migrations  unknown: %s; app migrate up runs once before the release's services change\n", m.Note)
	case len(m.Pending) == 0:
		fmt.Fprintf(w, "  migrations  none pending (%d applied; asked in %s); no migration job runs\n", len(m.Applied), m.Took.Round(100*time.Millisecond))
	default:
		fmt.Fprintf(w, "  migrations  %d pending (asked in %s), applied once before the release's services change:\n", len(m.Pending), m.Took.Round(100*time.Millisecond))
		for _, p := range m.Pending {
			fmt.Fprintf(w, "              %s\n", p)
		}
	}
}

// maxServiceName is the longest service name Swarm accepts (a DNS label).
const maxServiceName = 63

// jobName is a job's service name, <stack>_<what>-<random>: unique, since
// jobs outside the lock (a dry run's, deploy:status's) may run side by
// side. When that is longer than Swarm takes, the stack part is cut and
// ends in a short hash of the whole stack name, so that stacks that share
// a long prefix still name their jobs apart.
func jobName(stack, what string) string {
	suffix := fmt.Sprintf("_%s-%s", what, strings.ToLower(rand.Text()[:6]))
	if len(stack)+len(suffix) > maxServiceName {
		sum := sha256.Sum256([]byte(stack))
		h := hex.EncodeToString(sum[:3])
		stack = stack[:max(0, maxServiceName-len(suffix)-len(h)-1)] + "-" + h
	}
	return stack + suffix
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + l
	}
	return ""
}
