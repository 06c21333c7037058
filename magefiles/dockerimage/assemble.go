package dockerimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RuntimeConfig is what the image declares about how it runs: the USER,
// EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD of the Dockerfile's final stages.
// Assemble writes it into the image configuration; a test reads the
// Dockerfile and checks the two agree, so they cannot drift.
type RuntimeConfig struct {
	User         string
	ExposedPorts []string // "8080/tcp"
	Healthcheck  v1.HealthConfig
	Entrypoint   []string
	Cmd          []string
}

// Runtime is the service image's runtime contract.
var Runtime = RuntimeConfig{
	User:         "65532:65532",
	ExposedPorts: []string{"8080/tcp"},
	Healthcheck: v1.HealthConfig{
		Test:        []string{"CMD", "/app", "healthcheck"},
		Interval:    10 * time.Second,
		Timeout:     3 * time.Second,
		StartPeriod: 10 * time.Second,
		Retries:     3,
	},
	Entrypoint: []string{"/app"},
	Cmd:        []string{"serve"},
}

// The Dockerfile's defaults for the label build arguments: what a label says
// when the stamp leaves it empty.
const (
	defaultVersion = "dev"
	defaultCommit  = "unknown"
	defaultSource  = "https://github.com/fractionate/service-template"
	defaultTitle   = "service-template"
)

// Labels are the image's OCI labels for s, with the Dockerfile's defaults
// for what s leaves empty (so a stamp gives the same labels both ways).
func (s Stamp) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    or(s.Title, defaultTitle),
		"org.opencontainers.image.source":   or(s.Source, defaultSource),
		"org.opencontainers.image.version":  or(s.Version, defaultVersion),
		"org.opencontainers.image.revision": or(s.Commit, defaultCommit),
		"org.opencontainers.image.created":  s.CreatedString(),
	}
}

// Platform is what an image runs on.
type Platform struct{ OS, Architecture string }

// The layer's one file: where it goes and who owns it. Root owns it and the
// image's user (65532) may only run it, as with the Dockerfile's COPY.
const (
	appPath = "app"
	appMode = 0o755
	appUID  = 0
	appGID  = 0
)

// layerCompression is fixed: gzip output depends on the level, and the
// digest depends on the gzip output. compress/gzip has given the same bytes
// for the same input and level across Go releases, but that is not a
// promise: a Go upgrade that changed it would show in image:verifyReproducible.
// The default level: on the service's 14.5 MB binary, 5.27 MB in 0.46 s,
// where level 9 took 1.9 s for 0.3 % less and level 1 gave 5.9 MB.
const layerCompression = gzip.DefaultCompression

// Assemble makes the service image from the binary at path, directly as OCI
// (the way ko does), without a Dockerfile build: one layer holding /app,
// owned 0:0, mode 0755, modified at the stamp's time; a configuration with
// Runtime, the stamp's labels, and the commit time as its creation time.
// Nothing in it depends on the clock, the machine, the file's own mtime or
// mode, or the build cache, so the same binary and stamp give the same
// digest everywhere.
func Assemble(binaryPath string, s Stamp, p Platform) (v1.Image, error) {
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return nil, fmt.Errorf("assemble the image: %w", err)
	}
	return AssembleBytes(bin, s, p)
}

// AssembleBytes is Assemble for a binary already in memory.
func AssembleBytes(bin []byte, s Stamp, p Platform) (v1.Image, error) {
	if p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("assemble the image: platform %q/%q: want both OS and architecture", p.OS, p.Architecture)
	}
	created := s.Created.UTC().Truncate(time.Second)
	layerTar, err := appLayer(bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(layerCompression),
	)
	if err != nil {
		return nil, fmt.Errorf("assemble the image: layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "COPY /app (assembled by mage image:build)",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("assemble the image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assemble the image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Created = v1.Time{Time: created}
	cf.Config = imageConfig(s)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assemble the image: %w", err)
	}
	return img, nil
}

// defaultPath is the PATH Docker's builders give an image FROM scratch: the
// assembled image has it too, so that both builds run the same way.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// imageConfig is the runtime part of the image configuration for s.
func imageConfig(s Stamp) v1.Config {
	ports := map[string]struct{}{}
	for _, p := range Runtime.ExposedPorts {
		ports[p] = struct{}{}
	}
	hc := Runtime.Healthcheck
	hc.Test = append([]string(nil), hc.Test...)
	return v1.Config{
		User:         Runtime.User,
		Env:          []string{defaultPath},
		ExposedPorts: ports,
		Healthcheck:  &hc,
		Entrypoint:   append([]string(nil), Runtime.Entrypoint...),
		Cmd:          append([]string(nil), Runtime.Cmd...),
		Labels:       s.Labels(),
	}
}

// appLayer is the uncompressed layer: a tar with the one file.
func appLayer(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     appPath,
		Mode:     appMode,
		Uid:      appUID,
		Gid:      appGID,
		Size:     int64(len(bin)),
		ModTime:  mtime,
		Format:   tar.FormatPAX, // pinned: the format is part of the bytes
	})
	if err == nil {
		_, err = tw.Write(bin)
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("assemble the image: layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// AppFromImage returns the bytes of /app in img: the binary an image
// carries, for its SBOM or a comparison.
func AppFromImage(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("read the image's layers: %w", err)
	}
	// The last layer that has it wins, as in a container's filesystem.
	for i := len(layers) - 1; i >= 0; i-- {
		bin, found, err := fileInLayer(layers[i], appPath)
		if err != nil {
			return nil, err
		}
		if found {
			return bin, nil
		}
	}
	return nil, fmt.Errorf("the image has no /%s", appPath)
}

func fileInLayer(l v1.Layer, name string) ([]byte, bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, false, fmt.Errorf("read a layer: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read a layer: %w", err)
		}
		if h.Typeflag == tar.TypeReg && (h.Name == name || h.Name == "/"+name || h.Name == "./"+name) {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, false, fmt.Errorf("read /%s from a layer: %w", name, err)
			}
			return b, true, nil
		}
	}
}
