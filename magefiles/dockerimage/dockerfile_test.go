package dockerimage

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the module root: the directory above with go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func projectStages(t *testing.T) map[string]Stage {
	t.Helper()
	stages, err := readDockerfile(filepath.Join(repoRoot(t), Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	return byName
}

func TestDockerfileStageOrder(t *testing.T) {
	stages, err := readDockerfile(filepath.Join(repoRoot(t), Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	// The classic builder builds every stage before the target: prebuilt
	// must come first (it builds without pulling an image) and runtime last
	// (plain `docker build` builds the last stage).
	if got, want := stageNames(stages), []string{TargetPrebuilt, "builder", TargetRuntime}; !slices.Equal(got, want) {
		t.Fatalf("stages = %v, want %v", got, want)
	}
}

// binaryCopy finds the instruction that puts /app in a final stage and
// returns its index and source flags/paths.
func binaryCopy(t *testing.T, s Stage) (int, []string) {
	t.Helper()
	idx := -1
	var src []string
	for i, in := range s.Instructions {
		f := strings.Fields(in.Args)
		if (in.Cmd == "COPY" || in.Cmd == "ADD") && len(f) >= 2 && f[len(f)-1] == "/app" {
			if idx >= 0 {
				t.Fatalf("stage %s: two instructions write /app (lines %d and %d)", s.Name, s.Instructions[idx].Line, in.Line)
			}
			idx, src = i, f[:len(f)-1]
		}
	}
	if idx < 0 {
		t.Fatalf("stage %s: no COPY ... /app", s.Name)
	}
	return idx, src
}

func TestDockerfileFinalStagesIdenticalButForTheBinary(t *testing.T) {
	stages := projectStages(t)
	pre, run := stages[TargetPrebuilt], stages[TargetRuntime]

	for _, s := range []Stage{pre, run} {
		if s.From != "scratch" {
			t.Errorf("stage %s: FROM %s, want scratch", s.Name, s.From)
		}
	}
	pi, psrc := binaryCopy(t, pre)
	ri, rsrc := binaryCopy(t, run)
	if want := []string{HostBinary}; pre.Instructions[pi].Cmd != "COPY" || !slices.Equal(psrc, want) {
		t.Errorf("prebuilt: %s, want COPY %s /app", pre.Instructions[pi], HostBinary)
	}
	if len(rsrc) != 2 || rsrc[0] != "--from=builder" || run.Instructions[ri].Cmd != "COPY" {
		t.Errorf("runtime: %s, want COPY --from=builder <path> /app", run.Instructions[ri])
	}

	norm := func(s Stage, at int) []string {
		var out []string
		for i, in := range s.Instructions {
			if i == at {
				out = append(out, "COPY <binary> /app")
				continue
			}
			out = append(out, in.Cmd+" "+strings.Join(strings.Fields(in.Args), " "))
		}
		return out
	}
	p, r := norm(pre, pi), norm(run, ri)
	if !slices.Equal(p, r) {
		t.Errorf("the final stages differ apart from the binary:\nprebuilt:\n  %s\nruntime:\n  %s",
			strings.Join(p, "\n  "), strings.Join(r, "\n  "))
	}
}

func TestDockerfileRuntimeContract(t *testing.T) {
	s := projectStages(t)[TargetPrebuilt] // runtime is the same (test above)
	have := map[string][]string{}
	for _, in := range s.Instructions {
		have[in.Cmd] = append(have[in.Cmd], strings.Join(strings.Fields(in.Args), " "))
	}
	want := map[string]string{
		"USER":       "65532:65532",
		"EXPOSE":     "8080",
		"ENTRYPOINT": `["/app"]`,
		"CMD":        `["serve"]`,
	}
	for cmd, args := range want {
		if got := have[cmd]; len(got) != 1 || got[0] != args {
			t.Errorf("%s = %q, want exactly %q", cmd, got, args)
		}
	}
	if hc := have["HEALTHCHECK"]; len(hc) != 1 {
		t.Errorf("HEALTHCHECK = %q, want one", hc)
	} else {
		for _, part := range []string{"--interval=", "--timeout=", "--start-period=", "--retries=", `CMD ["/app", "healthcheck"]`} {
			if !strings.Contains(hc[0], part) {
				t.Errorf("HEALTHCHECK %q lacks %q", hc[0], part)
			}
		}
	}
	labels := strings.Join(have["LABEL"], " ")
	for _, k := range []string{"revision", "version", "created", "source", "title"} {
		if !strings.Contains(labels, "org.opencontainers.image."+k+"=") {
			t.Errorf("no label org.opencontainers.image.%s in %q", k, labels)
		}
	}
	// Labels come from build arguments, which must be declared in the stage.
	args := strings.Join(have["ARG"], " ")
	for _, a := range []string{"VERSION", "COMMIT", "CREATED", "SOURCE", "TITLE"} {
		if !strings.Contains(args, a) || !strings.Contains(labels, "${"+a+"}") {
			t.Errorf("build argument %s not declared or not used in a label", a)
		}
	}
}

func TestDockerfileBuilderStage(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"ARG GO_VERSION=1.26\n", "ARG BUILDER_IMAGE=golang:${GO_VERSION}\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks the global %q", strings.TrimSpace(want))
		}
	}
	b := projectStages(t)["builder"]
	if b.From != "${BUILDER_IMAGE}" {
		t.Errorf("builder FROM %s, want ${BUILDER_IMAGE}", b.From)
	}
	var seq []string
	var build string
	for _, in := range b.Instructions {
		switch in.Cmd {
		case "COPY":
			seq = append(seq, "COPY "+in.Args)
			if strings.HasPrefix(in.Args, ". ") {
				t.Errorf("line %d: COPY . copies the whole context: any change busts the cache", in.Line)
			}
		case "RUN":
			seq = append(seq, "RUN "+in.Args)
			if strings.Contains(in.Args, "go build") {
				build = in.Args
			}
		}
	}
	if len(seq) < 3 || seq[0] != "COPY go.mod go.sum ./" || seq[1] != "RUN go mod download" {
		t.Errorf("builder must start with COPY go.mod go.sum ./ then RUN go mod download, has %q", seq)
	}
	// The Dockerfile's build and the host build (GoBuild) make the same binary.
	stamp := Stamp{Version: "${VERSION}", Commit: "${COMMIT}"}
	ldflags := strings.Replace(LDFlags(stamp), ".Date=", ".Date=${CREATED}", 1)
	for _, want := range []string{"CGO_ENABLED=0", "go build -trimpath -buildvcs=false", `-ldflags "` + ldflags + `"`, "./app"} {
		if !strings.Contains(build, want) {
			t.Errorf("builder's go build lacks %q:\n%s", want, build)
		}
	}
}

// The builder copies only some directories, and .dockerignore lets only
// some in: both must cover every package and embedded file of ./app.
func TestDockerfileCopiesEverythingTheBinaryNeeds(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-e", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "github.com/fractionate/service-template"}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, "./app")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var needed []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, f[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range f[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, file)))
		}
	}
	if !slices.Contains(needed, "app/main.go") {
		t.Fatalf("go list found no app/main.go; got %v", needed)
	}

	var copied []string
	for _, in := range projectStages(t)["builder"].Instructions {
		f := strings.Fields(in.Args)
		if in.Cmd == "COPY" && len(f) >= 2 && !strings.HasPrefix(f[0], "--") {
			copied = append(copied, f[:len(f)-1]...)
		}
	}
	inContext, err := ContextFiles(root, TargetRuntime)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range needed {
		ok := slices.ContainsFunc(copied, func(src string) bool {
			return n == src || strings.HasPrefix(n, strings.TrimSuffix(src, "/")+"/")
		})
		if !ok {
			t.Errorf("%s is needed by ./app but the builder stage does not COPY it (copies %v)", n, copied)
		}
		if !slices.Contains(inContext, n) {
			t.Errorf("%s is needed by ./app but .dockerignore keeps it out of the build context", n)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Stage
		wantErr string
	}{
		{
			name: "stages, continuations and comments",
			in:   "# top\nARG X=1\nFROM a:${X} AS one\nRUN a \\\n  # inside\n  b\n\nfrom --platform=$P b as Two\nlabel k=v \\\n  k2=v2\n",
			want: []Stage{
				{Name: "one", From: "a:${X}", Instructions: []Instruction{{Cmd: "RUN", Args: "a b", Line: 4}}},
				{Name: "Two", From: "b", Instructions: []Instruction{{Cmd: "LABEL", Args: "k=v k2=v2", Line: 9}}},
			},
		},
		{name: "unnamed stage", in: "FROM scratch\nCOPY a /a\n", want: []Stage{{From: "scratch", Instructions: []Instruction{{Cmd: "COPY", Args: "a /a", Line: 2}}}}},
		{name: "instruction before FROM", in: "RUN x\nFROM a\n", wantErr: "RUN before the first FROM"},
		{name: "no FROM", in: "ARG A\n", wantErr: "no FROM"},
		{name: "bad FROM", in: "FROM a AS\n", wantErr: "cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDockerfile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b Stage) bool {
				return a.Name == b.Name && a.From == b.From && slices.Equal(a.Instructions, b.Instructions)
			}) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
