package devstack

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/patternmatcher"

	"github.com/fractionate/service-template/magefiles/dockerimage"
)

// fileState is what tells a file changed: a save changes its size or its
// modification time.
type fileState struct {
	size    int64
	modTime time.Time
}

// Snapshot is the state of every file of a build context.
type Snapshot map[string]fileState

// Take reads the state of the files in dir that the image is built from:
// the ones .dockerignore lets into the build context (Go sources without
// their tests, go.mod and go.sum, config/*.json, migrations/), except the
// binary the host build writes there. A change to any of them changes the
// image; a change to anything else (tests, docs, magefiles) does not.
func Take(dir string) (Snapshot, error) {
	patterns, err := dockerimage.ReadIgnore(dir)
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(append(patterns, dockerimage.HostBinary))
	if err != nil {
		return nil, fmt.Errorf("%s/.dockerignore: %w", dir, err)
	}
	snap := Snapshot{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if d.IsDir() {
			// An excluded directory may still hold files let back in by
			// an exception (!app/), unless there are none.
			if d.Name() == ".git" || (excluded && !pm.Exclusions()) {
				return filepath.SkipDir
			}
			return nil
		}
		if excluded || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		snap[rel] = fileState{info.Size(), info.ModTime()}
		return nil
	})
	return snap, err
}

// Changed lists, sorted, the files added, removed or modified from a to b.
func Changed(a, b Snapshot) []string {
	var out []string
	for f, st := range b {
		if old, ok := a[f]; !ok || old != st {
			out = append(out, f)
		}
	}
	for f := range a {
		if _, ok := b[f]; !ok {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// WatchOptions tune Watch.
type WatchOptions struct {
	Interval time.Duration // how often to look at the files; 250 ms when 0
	// Settle is how long the files must stay unchanged before a rebuild
	// starts, so that an editor or a git checkout writing several files
	// causes one rebuild; 150 ms when 0.
	Settle time.Duration
	// Reloaded, when set, is called after every rebuild.
	Reloaded func(Reload)
}

// Reload is one rebuild.
type Reload struct {
	Changed []string
	Took    time.Duration // from noticing the change to the new app being healthy
	Err     error         // the build failed or the new app did not come up
}

// Watch rebuilds and recreates the app (Reload) whenever a file the image is
// built from changes, until ctx is done; then it returns nil.
//
// Why a watcher of our own rather than Compose's develop.watch with
// `action: rebuild`: both work with Compose 2.40 on a 20.10 engine, but
// Compose can only rebuild the image, so the binary compiles inside the
// golang image with an empty Go build cache every time (the Dockerfile
// must also build with the classic builder, so no cache mounts): about a
// minute from save to served on 2 cores, against about 4 s here, where
// the host's build cache compiles only what changed. A failed
// rebuild is reported and watching goes on: the next save tries again, and
// the previous app keeps serving meanwhile.
func (s Stack) Watch(ctx context.Context, o WatchOptions) error {
	interval, settle := cmp.Or(o.Interval, 250*time.Millisecond), cmp.Or(o.Settle, 150*time.Millisecond)
	last, err := Take(s.Dir)
	if err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now, err := Take(s.Dir)
		if err != nil {
			fmt.Fprintf(s.out(), "watch: %v\n", err)
			continue
		}
		changed := Changed(last, now)
		if len(changed) == 0 {
			continue
		}
		start := time.Now()
		// Wait for the writes to settle, gathering what changed meanwhile.
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(settle):
			}
			again, err := Take(s.Dir)
			if err != nil || len(Changed(now, again)) == 0 {
				break
			}
			now = again
		}
		changed = Changed(last, now)
		last = now
		fmt.Fprintf(s.out(), "watch: %s changed; rebuilding\n", summary(changed))
		err = s.Reload(ctx, slices.ContainsFunc(changed, isMigration))
		if ctx.Err() != nil {
			return nil
		}
		r := Reload{Changed: changed, Took: time.Since(start), Err: err}
		if err != nil {
			fmt.Fprintf(s.out(), "watch: rebuild failed (the previous app keeps serving; save again to retry): %v\n", err)
		} else {
			fmt.Fprintf(s.out(), "watch: the new app answers (%.1fs after the change)\n", r.Took.Seconds())
		}
		if o.Reloaded != nil {
			o.Reloaded(r)
		}
	}
}

// MigrationsDir holds the migrations, which are embedded in the binary.
const MigrationsDir = "migrations/"

func isMigration(file string) bool { return strings.HasPrefix(file, MigrationsDir) }

func summary(files []string) string {
	if len(files) <= 3 {
		return fmt.Sprint(files)
	}
	return fmt.Sprintf("%v and %d more", files[:3], len(files)-3)
}
