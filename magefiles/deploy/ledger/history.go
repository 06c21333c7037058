// Package ledger keeps an environment's history and its lock in the Swarm
// itself: records and the lock are Swarm configs, immutable objects in the
// Raft store that any manager client can read, so they need no other store
// and look the same from every machine. They carry no stack label, so
// docker stack rm leaves them alone.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Labels of the objects a deploy makes besides the stack's own: records,
// the lock, jobs, secret versions and the registry.
const (
	LabelPrefix = "org.fractionate.deploy."
	LabelKind   = LabelPrefix + "kind"
	LabelStack  = LabelPrefix + "stack"
	labelSeq    = LabelPrefix + "seq"
	labelResult = LabelPrefix + "result"
)

// Store is the part of the Engine API the ledger needs: Swarm configs.
type Store interface {
	ConfigCreate(ctx context.Context, options client.ConfigCreateOptions) (client.ConfigCreateResult, error)
	ConfigInspect(ctx context.Context, id string, options client.ConfigInspectOptions) (client.ConfigInspectResult, error)
	ConfigList(ctx context.Context, options client.ConfigListOptions) (client.ConfigListResult, error)
	ConfigRemove(ctx context.Context, id string, options client.ConfigRemoveOptions) (client.ConfigRemoveResult, error)
}

// Action is the kind of change a record is of.
type Action string

// The changes a deploy target makes.
const (
	Deploy   Action = "deploy"
	Rollback Action = "rollback"
	Scale    Action = "scale"
	Rotate   Action = "rotate"
	// Proxy deploys the front proxy (deploy:proxy): a release of Traefik,
	// never migrated.
	Proxy Action = "proxy"
)

// Result is how a change ended.
type Result string

// The results, each with its exit code.
const (
	Succeeded  Result = "succeeded"   // exit 0
	NotApplied Result = "not applied" // exit 1: stopped before any service changed (a failed migration)
	RolledBack Result = "rolled back" // exit 2: failed, the previous release restored
	Failed     Result = "failed"      // exit 3: failed, could not restore
)

// Smoke checks as a record tells them.
const (
	SmokePassed  = "passed"
	SmokeSkipped = "skipped" // configured, but nothing to ask (a scale to 0)
)

// Record is one change, as kept in the Swarm.
type Record struct {
	Env      string        `json:"env"`
	Stack    string        `json:"stack"`
	Seq      int           `json:"seq"`
	Action   Action        `json:"action"`
	Version  string        `json:"version"`
	Digest   string        `json:"digest"`
	GitSHA   string        `json:"git_sha,omitempty"`
	Who      string        `json:"who"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Result   Result        `json:"result"`
	Reason   string        `json:"reason,omitempty"`   // Swarm's or the task's, when it failed; at most MaxReason bytes
	Target   int           `json:"target,omitempty"`   // the record a rollback went back to
	Override string        `json:"override,omitempty"` // why preflight checks were overridden
	// Smoke is SmokePassed, SmokeSkipped or "" (none configured, or the
	// change did not get that far).
	Smoke string `json:"smoke,omitempty"`
	// EnvFile and EnvFileSHA256 name the environments file the change was
	// made with (DEPLOY_ENVIRONMENTS_FILE may name another than the
	// repository's).
	EnvFile       string `json:"env_file,omitempty"`
	EnvFileSHA256 string `json:"env_file_sha256,omitempty"`
	// Nodes are the hostnames of the nodes the change started tasks on.
	Nodes []string `json:"nodes,omitempty"`
	// Services is every service of the stack as the change left it (or,
	// when it failed, as it meant to): what restores exactly this release.
	// Specs name secrets, never hold their values.
	Services map[string]ServiceRecord `json:"services"`
}

// ServiceRecord is one service in a record.
type ServiceRecord struct {
	Image    string            `json:"image"` // repository:tag@digest
	Replicas *uint64           `json:"replicas,omitempty"`
	Spec     swarm.ServiceSpec `json:"spec"`
}

// MaxReason bounds a record's reason: a task's error or a smoke check's
// answers can be long, and a record is one Swarm config (at most 500 KiB).
const MaxReason = 2000

// BoundReason cuts s to MaxReason bytes, on a character boundary.
func BoundReason(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	const cut = " [... cut]"
	n := MaxReason - len(cut)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + cut
}

func recordName(stack string, seq int) string { return fmt.Sprintf("%s.deploy.%06d", stack, seq) }

// History reads and writes an environment's records.
type History struct {
	API   Store
	Stack string
	Keep  int // records kept; older ones are removed after each write
}

func (h History) list(ctx context.Context) ([]swarm.Config, error) {
	cs, err := h.API.ConfigList(ctx, client.ConfigListOptions{Filters: client.Filters{}.
		Add("label", LabelKind+"=record").Add("label", LabelStack+"="+h.Stack)})
	if err != nil {
		return nil, fmt.Errorf("read the deploy history of stack %s: %w", h.Stack, err)
	}
	return cs.Items, nil
}

// List returns the records, newest first.
func (h History) List(ctx context.Context) ([]Record, error) {
	items, err := h.list(ctx)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, c := range items {
		// The list leaves the data out: read each one.
		full, err := h.API.ConfigInspect(ctx, c.ID, client.ConfigInspectOptions{})
		if err != nil {
			return nil, fmt.Errorf("read deploy record %s: %w", c.Spec.Name, err)
		}
		var r Record
		if err := json.Unmarshal(full.Config.Spec.Data, &r); err != nil {
			return nil, fmt.Errorf("deploy record %s: %w", c.Spec.Name, err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return b.Seq - a.Seq })
	return out, nil
}

// Next returns the sequence number the next record gets. Called under the
// lock, so no other writer races it.
func (h History) Next(ctx context.Context) (int, error) {
	items, err := h.list(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range items {
		if s, err := strconv.Atoi(c.Spec.Labels[labelSeq]); err == nil && s > n {
			n = s
		}
	}
	return n + 1, nil
}

// ErrPrune marks a record that was written though older ones could not be
// pruned: a warning, not a failed change.
var ErrPrune = errors.New("the record was written, but the history was not pruned")

// Write stores r (its reason bounded) and removes the records beyond Keep.
func (h History) Write(ctx context.Context, r Record) error {
	r.Reason = BoundReason(r.Reason)
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode deploy record: %w", err)
	}
	spec := swarm.ConfigSpec{
		Annotations: swarm.Annotations{Name: recordName(h.Stack, r.Seq), Labels: map[string]string{
			LabelKind: "record", LabelStack: h.Stack, labelSeq: strconv.Itoa(r.Seq), labelResult: string(r.Result),
		}},
		Data: data,
	}
	if _, err := h.API.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec}); err != nil {
		return fmt.Errorf("write deploy record %s: %w", spec.Name, err)
	}
	if err := h.prune(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrPrune, err)
	}
	return nil
}

func (h History) prune(ctx context.Context) error {
	if h.Keep <= 0 {
		return nil
	}
	items, err := h.list(ctx)
	if err != nil {
		return fmt.Errorf("prune deploy history: %w", err)
	}
	slices.SortFunc(items, func(a, b swarm.Config) int {
		x, _ := strconv.Atoi(a.Spec.Labels[labelSeq])
		y, _ := strconv.Atoi(b.Spec.Labels[labelSeq])
		return y - x
	})
	for i := h.Keep; i < len(items); i++ {
		if _, err := h.API.ConfigRemove(ctx, items[i].ID, client.ConfigRemoveOptions{}); err != nil {
			return fmt.Errorf("prune deploy record %s: %w", items[i].Spec.Name, err)
		}
	}
	return nil
}

// Print writes records as a table, newest first.
func Print(w io.Writer, records []Record) error {
	if len(records) == 0 {
		_, err := fmt.Fprintln(w, "no deploys recorded")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tWHEN\tACTION\tVERSION\tDIGEST\tRESULT\tDURATION\tWHO\tGIT\tNODES\tNOTE")
	for _, r := range records {
		note := r.Reason
		if r.Target != 0 {
			note = strings.TrimSpace(fmt.Sprintf("to #%d %s", r.Target, note))
		}
		if r.Override != "" {
			note = strings.TrimSpace(note + " override: " + r.Override)
		}
		nodes := strings.Join(r.Nodes, ",")
		if nodes == "" {
			nodes = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Started.Local().Format("2006-01-02 15:04:05"),
			r.Action, r.Version, ShortDigest(r.Digest), r.Result, r.Duration.Round(time.Second), r.Who, short(r.GitSHA, 7), nodes, note)
	}
	return tw.Flush()
}

// ShortDigest is a digest's algorithm and first 12 hex digits.
func ShortDigest(d string) string { return short(d, 19) }

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
