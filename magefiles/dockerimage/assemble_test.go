package dockerimage

import (
	"archive/tar"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var fullStamp = Stamp{
	Version: "v1.2.3",
	Commit:  "0123456789abcdef0123456789abcdef01234567",
	Created: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
	Source:  "https://github.com/acme/api",
	Title:   "api",
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestAssembleIsAFunctionOfBinaryStampAndPlatform(t *testing.T) {
	bin := []byte("\x7fELF pretend binary")
	amd := Platform{"linux", "amd64"}
	base := digestOf(t, must(AssembleBytes(bin, fullStamp, amd)))

	// The file's own mode and mtime do not matter: only its bytes.
	dir := t.TempDir()
	p := filepath.Join(dir, "app")
	if err := os.WriteFile(p, bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Assemble(p, fullStamp, amd)
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, fromFile); got != base {
		t.Errorf("from a file with another mode and mtime: %s, want %s", got, base)
	}

	other := fullStamp
	other.Version = "v1.2.4"
	changes := map[string]v1.Image{
		"another binary":   must(AssembleBytes([]byte("\x7fELF other"), fullStamp, amd)),
		"another stamp":    must(AssembleBytes(bin, other, amd)),
		"another platform": must(AssembleBytes(bin, fullStamp, Platform{"linux", "arm64"})),
	}
	for what, img := range changes {
		if digestOf(t, img) == base {
			t.Errorf("%s gives the same digest", what)
		}
	}
	if _, err := AssembleBytes(bin, fullStamp, Platform{}); err == nil {
		t.Error("no platform: no error")
	}
}

func must(img v1.Image, err error) v1.Image {
	if err != nil {
		panic(err)
	}
	return img
}

func TestAssembledImage(t *testing.T) {
	bin := []byte("\x7fELF pretend binary")
	img := must(AssembleBytes(bin, fullStamp, Platform{"linux", "amd64"}))

	mt, _ := img.MediaType()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: manifest %s, config %s; want OCI", mt, m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers = %+v, want one OCI gzip layer", m.Layers)
	}

	layers, _ := img.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(tr)
	if h.Name != "app" || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(fullStamp.Created) || string(content) != string(bin) {
		t.Errorf("layer entry = %s mode %o uid %d gid %d uname %q mtime %s, %d bytes", h.Name, h.Mode, h.Uid, h.Gid, h.Uname, h.ModTime, len(content))
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("the layer has more than /app (%v)", err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Equal(fullStamp.Created) || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("created %s, platform %s/%s", cf.Created, cf.OS, cf.Architecture)
	}
	for _, h := range cf.History {
		if !h.Created.Equal(fullStamp.Created) {
			t.Errorf("history entry created %s, want the commit time", h.Created)
		}
	}
	c := cf.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/app"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("user %q entrypoint %q cmd %q", c.User, c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if c.Healthcheck == nil || c.Healthcheck.Interval != 10*time.Second || c.Healthcheck.Retries != 3 {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "api",
		"org.opencontainers.image.source":   "https://github.com/acme/api",
		"org.opencontainers.image.version":  "v1.2.3",
		"org.opencontainers.image.revision": fullStamp.Commit,
		"org.opencontainers.image.created":  "2025-03-04T05:06:07Z",
	}
	if !maps.Equal(c.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", c.Labels, wantLabels)
	}

	got, err := AppFromImage(img)
	if err != nil || string(got) != string(bin) {
		t.Errorf("AppFromImage = %q, %v", got, err)
	}
}

// The Dockerfile's final stages and Runtime/Stamp.Labels describe one
// image: whoever changes one must change the other.
func TestDockerfileAgreesWithTheAssembledImage(t *testing.T) {
	s := projectStages(t)[TargetPrebuilt] // runtime is the same (TestDockerfileFinalStagesIdenticalButForTheBinary)
	args := map[string]string{}
	var labels map[string]string
	got := RuntimeConfig{}
	var ports []string
	for _, in := range s.Instructions {
		a := strings.Join(strings.Fields(in.Args), " ")
		switch in.Cmd {
		case "ARG":
			k, v, _ := strings.Cut(a, "=")
			args[k] = v
		case "LABEL":
			labels = map[string]string{}
			for _, kv := range strings.Fields(a) {
				k, v, _ := strings.Cut(kv, "=")
				labels[k] = strings.Trim(v, `"`)
			}
		case "USER":
			got.User = a
		case "EXPOSE":
			for _, p := range strings.Fields(a) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				ports = append(ports, p)
			}
		case "ENTRYPOINT":
			got.Entrypoint = jsonArray(t, a)
		case "CMD":
			got.Cmd = jsonArray(t, a)
		case "HEALTHCHECK":
			got.Healthcheck = parseHealthcheck(t, a)
		}
	}
	got.ExposedPorts = ports
	if g, w := mustJSON(got), mustJSON(Runtime); g != w {
		t.Errorf("the Dockerfile declares %s\nAssemble writes        %s", g, w)
	}

	// Labels: the Dockerfile's, with the build arguments a stamp gives (or
	// their defaults), against Stamp.Labels.
	for _, stamp := range []Stamp{fullStamp, {}} {
		values := maps.Clone(args)
		maps.Copy(values, derefAll(stamp.BuildArgs()))
		want := map[string]string{}
		for k, v := range labels {
			want[k] = os.Expand(v, func(name string) string { return values[name] })
		}
		if !maps.Equal(stamp.Labels(), want) {
			t.Errorf("stamp %+v:\nStamp.Labels %v\nDockerfile   %v", stamp, stamp.Labels(), want)
		}
	}
}

func derefAll(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = *v
	}
	return out
}

func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		t.Fatalf("%s: want the exec (JSON) form: %v", s, err)
	}
	return a
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// parseHealthcheck reads HEALTHCHECK [--flag=value ...] CMD [...].
func parseHealthcheck(t *testing.T, s string) v1.HealthConfig {
	t.Helper()
	var hc v1.HealthConfig
	rest := s
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		switch k {
		case "retries":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			hc.Retries = n
		default:
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("HEALTHCHECK --%s=%s: %v", k, v, err)
			}
			switch k {
			case "interval":
				hc.Interval = d
			case "timeout":
				hc.Timeout = d
			case "start-period":
				hc.StartPeriod = d
			default:
				t.Fatalf("HEALTHCHECK flag --%s: not in RuntimeConfig", k)
			}
		}
	}
	cmd, ok := strings.CutPrefix(rest, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q: want CMD [...]", s)
	}
	hc.Test = append([]string{"CMD"}, jsonArray(t, cmd)...)
	return hc
}
