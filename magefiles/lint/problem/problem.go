// Package problem is how lint's file checks report: every problem with the
// line at fault, all at once, in line order.
package problem

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one broken rule; Line is 0 when the position is unknown.
type Problem struct {
	Line    int
	Message string
}

// List gathers the problems of one file. As an error it is one
// "file:line: message" per line.
type List struct {
	File     string
	Problems []Problem
}

// Add records a problem at line.
func (l *List) Add(line int, format string, args ...any) {
	l.Problems = append(l.Problems, Problem{line, fmt.Sprintf(format, args...)})
}

// Err is l sorted by line, or nil when there are no problems.
func (l *List) Err() error {
	if len(l.Problems) == 0 {
		return nil
	}
	slices.SortStableFunc(l.Problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return l
}

func (l *List) Error() string {
	lines := make([]string, len(l.Problems))
	for i, p := range l.Problems {
		if p.Line > 0 {
			lines[i] = fmt.Sprintf("%s:%d: %s", l.File, p.Line, p.Message)
		} else {
			lines[i] = fmt.Sprintf("%s: %s", l.File, p.Message)
		}
	}
	return strings.Join(lines, "\n")
}
