package devstack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/fractionate/service-template/magefiles/runner"
)

// MinCompose is the oldest Compose release the stack is known to work with:
// `up --wait` treating a one-off that exited 0 as done, `run --build`, and
// `ps --format json` one object per line.
const MinCompose = "2.21.0"

// CheckCompose fails, saying what to install, unless `docker compose` is
// Compose v2 at MinCompose or later.
func CheckCompose(ctx context.Context) error {
	out, err := runner.Output(ctx, runner.Command("docker", "compose", "version", "--short"))
	if err != nil {
		return fmt.Errorf("the local stack needs Docker Compose v2 (`docker compose`), %s or later: install Docker Desktop or the docker-compose-plugin package (CI builds it: .ci/compose.sh): %w", MinCompose, err)
	}
	if !atLeast(out, MinCompose) {
		return fmt.Errorf("the local stack needs Docker Compose %s or later; docker compose version says %q", MinCompose, out)
	}
	return nil
}

// atLeast compares dotted versions (a leading v and any -suffix ignored).
func atLeast(have, want string) bool {
	h, w := parts(have), parts(want)
	if h == nil {
		return false
	}
	for i := range w {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

func parts(v string) []int {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "-")
	v, _, _ = strings.Cut(v, "+")
	fields := strings.Split(v, ".")
	out := make([]int, 3)
	for i := range out {
		if i >= len(fields) {
			break
		}
		n, err := strconv.Atoi(fields[i])
		if err != nil {
			return nil
		}
		out[i] = n
	}
	return out
}
