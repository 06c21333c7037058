// Command swarmtest-sweep removes what multi-node test beds of runs that
// are gone left behind (a test binary killed with SIGKILL, or timed out):
// namespaces, links, processes, cgroups and files named swt-<bed>. Beds
// of runs still going are left alone. .ci/multinode.sh runs it before the
// tests.
package main

import (
	"fmt"
	"os"

	"github.com/fractionate/service-template/internal/swarmtest"
)

func main() {
	swept, err := swarmtest.SweepStale()
	if len(swept) > 0 {
		fmt.Printf("swarmtest-sweep: removed the stale test beds %v\n", swept)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "swarmtest-sweep:", err)
		os.Exit(1)
	}
}
