package deploy

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

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Records and the lock are Swarm configs: immutable objects in the Swarm's
// Raft store that any manager client can read, so the history needs no
// other store and is the same from every machine. They carry no stack
// label, so docker stack rm leaves the history alone.
const (
	labelPrefix = "org.fractionate.deploy."
	labelKind   = labelPrefix + "kind"
	labelStack  = labelPrefix + "stack"
	labelSeq    = labelPrefix + "seq"
	labelResult = labelPrefix + "result"
)

// Results of a change.
const (
	Succeeded  = "succeeded"   // exit 0
	RolledBack = "rolled back" // exit 2: failed, previous release restored
	Failed     = "failed"      // exit 3: failed, could not restore
	NotApplied = "not applied" // exit 1: stopped before any service changed (a failed migration)
)

// Record is one deploy, rollback or scale, as kept in the Swarm.
type Record struct {
	Env      string        `json:"env"`
	Stack    string        `json:"stack"`
	Seq      int           `json:"seq"`
	Action   string        `json:"action"` // deploy, rollback, scale
	Version  string        `json:"version"`
	Digest   string        `json:"digest"`
	GitSHA   string        `json:"git_sha,omitempty"`
	Who      string        `json:"who"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Result   string        `json:"result"`
	Reason   string        `json:"reason,omitempty"`   // Swarm's or the task's, when it failed
	Target   int           `json:"target,omitempty"`   // the record a rollback went back to
	Override string        `json:"override,omitempty"` // why preflight checks were overridden
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

func recordName(stack string, seq int) string { return fmt.Sprintf("%s.deploy.%06d", stack, seq) }

// History reads and writes an environment's records.
type History struct {
	API   client.APIClient
	Stack string
	Keep  int // records kept; older ones are removed after each write
}

// List returns the records, newest first.
func (h History) List(ctx context.Context) ([]Record, error) {
	cs, err := h.API.ConfigList(ctx, client.ConfigListOptions{Filters: client.Filters{}.
		Add("label", labelKind+"=record").Add("label", labelStack+"="+h.Stack)})
	if err != nil {
		return nil, fmt.Errorf("read the deploy history of stack %s: %w", h.Stack, err)
	}
	var out []Record
	for _, c := range cs.Items {
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
	cs, err := h.API.ConfigList(ctx, client.ConfigListOptions{Filters: client.Filters{}.
		Add("label", labelKind+"=record").Add("label", labelStack+"="+h.Stack)})
	if err != nil {
		return 0, fmt.Errorf("read the deploy history of stack %s: %w", h.Stack, err)
	}
	n := 0
	for _, c := range cs.Items {
		if s, err := strconv.Atoi(c.Spec.Labels[labelSeq]); err == nil && s > n {
			n = s
		}
	}
	return n + 1, nil
}

// Write stores r and removes the records beyond Keep.
func (h History) Write(ctx context.Context, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode deploy record: %w", err)
	}
	spec := swarm.ConfigSpec{
		Annotations: swarm.Annotations{Name: recordName(h.Stack, r.Seq), Labels: map[string]string{
			labelKind: "record", labelStack: h.Stack, labelSeq: strconv.Itoa(r.Seq), labelResult: r.Result,
		}},
		Data: data,
	}
	if _, err := h.API.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec}); err != nil {
		return fmt.Errorf("write deploy record %s: %w", spec.Name, err)
	}
	if err := h.prune(ctx); err != nil {
		return fmt.Errorf("%w: %w", errPrune, err)
	}
	return nil
}

// errPrune marks a record that was written though older ones could not be
// pruned: a warning, not a failed change.
var errPrune = errors.New("the record was written, but the history was not pruned")

func (h History) prune(ctx context.Context) error {
	if h.Keep <= 0 {
		return nil
	}
	cs, err := h.API.ConfigList(ctx, client.ConfigListOptions{Filters: client.Filters{}.
		Add("label", labelKind+"=record").Add("label", labelStack+"="+h.Stack)})
	if err != nil {
		return fmt.Errorf("prune deploy history: %w", err)
	}
	items := cs.Items
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

// PrintHistory writes records as a table, newest first.
func PrintHistory(w io.Writer, records []Record) error {
	if len(records) == 0 {
		_, err := fmt.Fprintln(w, "no deploys recorded")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tWHEN\tACTION\tVERSION\tDIGEST\tRESULT\tDURATION\tWHO\tGIT\tNOTE")
	for _, r := range records {
		note := r.Reason
		if r.Target != 0 {
			note = strings.TrimSpace(fmt.Sprintf("to #%d %s", r.Target, note))
		}
		if r.Override != "" {
			note = strings.TrimSpace(note + " override: " + r.Override)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Started.Local().Format("2006-01-02 15:04:05"),
			r.Action, r.Version, shortDigest(r.Digest), r.Result, r.Duration.Round(time.Second), r.Who, short(r.GitSHA, 7), note)
	}
	return tw.Flush()
}

func shortDigest(d string) string { return short(d, 19) }

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
