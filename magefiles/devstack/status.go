package devstack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Container is one line of `docker compose ps --all --format json`.
type Container struct {
	Service  string `json:"Service"`
	State    string `json:"State"`  // running, exited, created, restarting, ...
	Health   string `json:"Health"` // healthy, unhealthy, starting, or empty without a check
	ExitCode int    `json:"ExitCode"`
}

// Describe says what state c is in, for people.
func (c Container) Describe() string {
	switch {
	case c.State == "exited":
		return fmt.Sprintf("exited with %d", c.ExitCode)
	case c.Health != "":
		return c.State + ", " + c.Health
	}
	return c.State
}

// Up reports whether c is where the stack wants it: running and healthy
// (or running with no health check), or a one-off that exited 0.
func (c Container) Up() bool {
	switch c.State {
	case "running":
		return c.Health == "" || c.Health == "healthy"
	case "exited":
		return c.ExitCode == 0
	}
	return false
}

// ParsePS reads `docker compose ps --format json`: one object per line
// (Compose 2.21 and later) or one array (earlier releases).
func ParsePS(b []byte) ([]Container, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] == '[' {
		var cs []Container
		if err := json.Unmarshal(b, &cs); err != nil {
			return nil, fmt.Errorf("docker compose ps: %w", err)
		}
		return cs, nil
	}
	var cs []Container
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Container
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("docker compose ps: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, sc.Err()
}

// Failing are the containers that are not up, by service name.
func Failing(cs []Container) []Container {
	var out []Container
	for _, c := range cs {
		if !c.Up() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.Service, b.Service) })
	return out
}
