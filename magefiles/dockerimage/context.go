package dockerimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/moby/go-archive"
	"github.com/moby/patternmatcher/ignorefile"
)

// Names the Dockerfile and the build share.
const (
	Dockerfile     = "Dockerfile"
	HostBinary     = "bin/image/app" // what the prebuilt stage copies, relative to the context
	TargetPrebuilt = "prebuilt"      // packages HostBinary; mage's default
	TargetRuntime  = "runtime"       // compiles in the golang builder stage
)

// ReadIgnore returns the patterns of dir/.dockerignore, parsed by moby's own
// reader; no file means no patterns.
func ReadIgnore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return patterns, nil
}

// Context returns the build context of dir as a tar stream, made the way the
// docker CLI makes it: moby's archive code honouring .dockerignore, with the
// Dockerfile and .dockerignore always sent (the daemon needs them and drops
// them again if they are ignored), and every file owned by 0:0 so that the
// local user never changes what the builder's cache sees.
//
// For TargetPrebuilt, HostBinary comes from dir. For any other target it is
// replaced by an empty placeholder: the classic builder builds every stage
// before the target, prebuilt included, whose COPY would fail without the
// file; the placeholder never reaches the runtime image, and a stale host
// binary neither travels to the engine nor disturbs its cache.
func Context(dir, target string) (io.ReadCloser, error) {
	patterns, err := ReadIgnore(dir)
	if err != nil {
		return nil, err
	}
	patterns = append(patterns, "!"+Dockerfile, "!.dockerignore")
	if target == TargetPrebuilt {
		return archive.TarWithOptions(dir, &archive.TarOptions{
			ExcludePatterns: patterns,
			ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
		})
	}
	tr, err := archive.TarWithOptions(dir, &archive.TarOptions{
		ExcludePatterns: append(patterns, HostBinary),
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, err
	}
	placeholder := func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
		return &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     HostBinary,
			Mode:     0o755,
			ModTime:  time.Unix(0, 0),
		}, nil, nil
	}
	return archive.ReplaceFileTarWrapper(tr, map[string]archive.TarModifierFunc{HostBinary: placeholder}), nil
}

// ContextFiles lists, sorted, the regular files that Context(dir, target)
// sends: what a build can see.
func ContextFiles(dir, target string) ([]string, error) {
	rc, err := Context(dir, target)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var files []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read build context of %s: %w", dir, err)
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, h.Name)
		}
	}
	slices.Sort(files)
	return files, nil
}
