package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// LockInfo is who holds an environment's lock.
type LockInfo struct {
	Holder string    `json:"holder"` // user@host, or the CI run
	Since  time.Time `json:"since"`  // by the holder's clock: for people
	Action string    `json:"action"` // what the holder is doing
	PID    int       `json:"pid,omitempty"`
	// Created is when the manager made the lock, by the manager's clock:
	// the age that decides whether a lock is abandoned is measured by one
	// clock, whatever the holder's and the breaker's say.
	Created time.Time `json:"-"`
}

// Age is how long the lock has been held, now being the manager's time.
func (l LockInfo) Age(now time.Time) time.Duration {
	from := l.Created
	if from.IsZero() {
		from = l.Since
	}
	return now.Sub(from).Round(time.Second)
}

func (l LockInfo) String() string {
	return fmt.Sprintf("held by %s since %s (%s ago), %s", l.Holder, l.Since.Local().Format(time.DateTime), time.Since(l.Since).Round(time.Second), l.Action)
}

// ErrLocked is returned when another change holds the lock.
var ErrLocked = errors.New("the environment is locked")

// Lock is an environment's lock: a Swarm config with a fixed name, whose
// creation fails when it exists, which makes taking it atomic.
type Lock struct {
	API   Store
	Stack string
}

func (l Lock) name() string { return l.Stack + ".deploy-lock" }

// Acquire takes the lock, or returns ErrLocked naming the holder.
func (l Lock) Acquire(ctx context.Context, info LockInfo) (release func(context.Context) error, err error) {
	data, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	spec := swarm.ConfigSpec{
		Annotations: swarm.Annotations{Name: l.name(), Labels: map[string]string{LabelKind: "lock", LabelStack: l.Stack}},
		Data:        data,
	}
	r, err := l.API.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec})
	if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
		held, rerr := l.Read(ctx)
		if rerr != nil {
			return nil, fmt.Errorf("%w (its holder could not be read: %w)", ErrLocked, rerr)
		}
		if held != nil {
			return nil, fmt.Errorf("%w: %s", ErrLocked, held)
		}
		// Released between the create and the read: try once more.
		r, err = l.API.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec})
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			return nil, fmt.Errorf("%w (taken and released again while we looked; try again)", ErrLocked)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("take the deploy lock %s: %w", l.name(), err)
	}
	return func(ctx context.Context) error {
		if _, err := l.API.ConfigRemove(ctx, r.ID, client.ConfigRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("release the deploy lock %s: %w", l.name(), err)
		}
		return nil
	}, nil
}

// Read returns the lock's holder, or nil when it is free.
func (l Lock) Read(ctx context.Context) (*LockInfo, error) {
	info, _, err := l.read(ctx)
	return info, err
}

func (l Lock) read(ctx context.Context) (*LockInfo, string, error) {
	c, err := l.API.ConfigInspect(ctx, l.name(), client.ConfigInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the deploy lock %s: %w", l.name(), err)
	}
	var info LockInfo
	if err := json.Unmarshal(c.Config.Spec.Data, &info); err != nil {
		info = LockInfo{Holder: "unknown (unreadable lock)", Since: c.Config.CreatedAt}
	}
	info.Created = c.Config.CreatedAt
	return &info, c.Config.ID, nil
}

// Break removes the lock whoever holds it. A lock younger than maxHold, by
// the manager's clock (now), is left unless force is set: a change can
// hold it that long while still working.
func (l Lock) Break(ctx context.Context, now time.Time, maxHold time.Duration, force bool) (*LockInfo, error) {
	info, id, err := l.read(ctx)
	if err != nil || info == nil {
		return nil, err
	}
	if age := info.Age(now); age < maxHold && !force {
		return info, fmt.Errorf("the lock is %s old by the manager's clock, and a change may hold it for up to %s (four deadlines, the migration status job and the smoke check): its holder may still be working (%s); use -force to break it anyway", age, maxHold, info)
	}
	if _, err := l.API.ConfigRemove(ctx, id, client.ConfigRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return info, fmt.Errorf("break the deploy lock %s: %w", l.name(), err)
	}
	return info, nil
}
