package deploy

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// History writes the environment's records, newest first.
func (s *Session) History(ctx context.Context, w io.Writer) error {
	s.Ready(ctx)
	records, err := ledger.History{API: s.API, Stack: s.Env.Stack}.List(ctx)
	if err != nil {
		return err
	}
	return ledger.Print(w, records)
}

// ShowLock writes who holds the environment's lock, or that it is free.
func (s *Session) ShowLock(ctx context.Context, w io.Writer) error {
	s.Ready(ctx)
	held, err := ledger.Lock{API: s.API, Stack: s.Env.Stack}.Read(ctx)
	switch {
	case err != nil:
		return err
	case held == nil:
		fmt.Fprintln(w, "free")
	default:
		fmt.Fprintln(w, held)
	}
	return nil
}

// Unlock breaks the environment's lock. Without force it refuses a lock
// younger, by the manager's clock, than the longest a working change may
// hold it (Environment.MaxHold). A dry run says whom it would break.
func (s *Session) Unlock(ctx context.Context, force, dryRun bool) error {
	s.Ready(ctx)
	lock := ledger.Lock{API: s.API, Stack: s.Env.Stack}
	if dryRun {
		held, err := lock.Read(ctx)
		if err != nil {
			return err
		}
		if held == nil {
			fmt.Fprintln(s.Out, "the lock is free: nothing to break")
		} else {
			fmt.Fprintln(s.Out, "would break the lock", held)
		}
		fmt.Fprintln(s.Out, "Dry run: nothing was changed.")
		return nil
	}
	info, err := s.API.Info(ctx, client.InfoOptions{})
	if err != nil {
		return Refused(fmt.Errorf("read the manager's clock: %w", err))
	}
	now, err := time.Parse(time.RFC3339Nano, info.Info.SystemTime)
	if err != nil {
		return Refused(fmt.Errorf("the manager's clock %q: %w", info.Info.SystemTime, err))
	}
	held, err := lock.Break(ctx, now, s.Env.MaxHold(), force)
	if err != nil {
		return Refused(err)
	}
	if held == nil {
		fmt.Fprintln(s.Out, "the lock was free")
	} else {
		fmt.Fprintln(s.Out, "broke the lock", held)
	}
	return nil
}
