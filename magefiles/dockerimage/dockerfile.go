package dockerimage

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuation lines
// joined: Cmd is the keyword in upper case, Args the rest as written.
type Instruction struct {
	Cmd  string
	Args string
	Line int // where it starts, 1-based
}

func (i Instruction) String() string { return i.Cmd + " " + i.Args }

// Stage is one FROM and the instructions after it.
type Stage struct {
	Name         string // the AS name; empty when there is none
	From         string // the base image as written
	Instructions []Instruction
}

// ParseDockerfile splits our Dockerfile into stages. It understands what the
// project's Dockerfile uses (comments, blank lines, backslash continuations,
// FROM ... AS name), not every corner of the format (no parser directives,
// heredocs or escape characters other than the backslash); it is for reading
// our own file, and the engine stays the judge of validity.
func ParseDockerfile(r io.Reader) ([]Stage, error) {
	var (
		stages  []Stage
		cur     strings.Builder
		start   int
		lineNum int
	)
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		switch {
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			s := Stage{}
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			switch {
			case len(f) == 1:
				s.From = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				s.From, s.Name = f[0], f[2]
			default:
				return fmt.Errorf("line %d: cannot read %q", in.Line, in.String())
			}
			stages = append(stages, s)
		case len(stages) == 0:
			// ARG before the first FROM: global, belongs to no stage.
			if in.Cmd != "ARG" {
				return fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
		default:
			last := &stages[len(stages)-1]
			last.Instructions = append(last.Instructions, in)
		}
		return nil
	}

	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lineNum++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments may sit inside a continued instruction too
		}
		if cur.Len() == 0 {
			if trimmed == "" {
				continue
			}
			start = lineNum
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(strings.TrimSpace(body) + " ")
			continue
		}
		cur.WriteString(trimmed)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction")
	}
	return stages, nil
}

// ReadDockerfile parses the Dockerfile at path.
func ReadDockerfile(path string) ([]Stage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stages, err := ParseDockerfile(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return stages, nil
}

// StageNames lists the named stages in file order: the valid build targets.
func StageNames(stages []Stage) []string {
	var names []string
	for _, s := range stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return names
}

// checkTarget fails, naming the valid targets, when target is not a stage of
// the Dockerfile. The classic builder's own message ("failed to reach build
// target x in Dockerfile") names neither the file nor the alternatives.
func checkTarget(dockerfile, target string) error {
	stages, err := ReadDockerfile(dockerfile)
	if err != nil {
		return err
	}
	names := StageNames(stages)
	if !slices.Contains(names, target) {
		return fmt.Errorf("unknown build target %q: %s has the stages %s", target, dockerfile, strings.Join(names, ", "))
	}
	return nil
}
