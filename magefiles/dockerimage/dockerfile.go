package dockerimage

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
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

// parseDockerfile splits a Dockerfile into stages with BuildKit's parser,
// the one docker build uses: continuations, comments, directives and
// heredocs are read as the engine reads them.
func parseDockerfile(r io.Reader) ([]Stage, error) {
	res, err := parser.Parse(r)
	if err != nil {
		return nil, err
	}
	var stages []Stage
	for _, n := range res.AST.Children {
		// Original is the instruction as written, continuations joined;
		// whitespace is normalised so a reader compares words.
		args := strings.Join(strings.Fields(n.Original)[1:], " ")
		in := Instruction{Cmd: strings.ToUpper(n.Value), Args: args, Line: n.StartLine}
		switch {
		case in.Cmd == "FROM":
			var words []string
			for w := n.Next; w != nil; w = w.Next {
				words = append(words, w.Value)
			}
			s := Stage{}
			switch {
			case len(words) == 1:
				s.From = words[0]
			case len(words) == 3 && strings.EqualFold(words[1], "AS"):
				s.From, s.Name = words[0], words[2]
			default:
				return nil, fmt.Errorf("line %d: cannot read %q", in.Line, in.String())
			}
			stages = append(stages, s)
		case len(stages) == 0:
			// ARG before the first FROM: global, belongs to no stage.
			if in.Cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
		default:
			last := &stages[len(stages)-1]
			last.Instructions = append(last.Instructions, in)
		}
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction")
	}
	return stages, nil
}

// readDockerfile parses the Dockerfile at path.
func readDockerfile(path string) ([]Stage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stages, err := parseDockerfile(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return stages, nil
}

// stageNames lists the named stages in file order: the valid build targets.
func stageNames(stages []Stage) []string {
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
	stages, err := readDockerfile(dockerfile)
	if err != nil {
		return err
	}
	names := stageNames(stages)
	if !slices.Contains(names, target) {
		return fmt.Errorf("unknown build target %q: %s has the stages %s", target, dockerfile, strings.Join(names, ", "))
	}
	return nil
}
