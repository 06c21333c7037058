package dockertest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// RemoveStack removes a Swarm stack for a test's clean-up: docker stack rm,
// then a wait for its containers to go, then the removal of its volumes,
// which docker stack rm leaves behind. Swarm refuses to remove a network
// while a task of a removed service on it is still stopping, so a failed
// docker stack rm is tried again. It has a deadline of its own (the test's
// context has ended when clean-ups run); what it cannot remove by then is
// a test error.
func RemoveStack(t testing.TB, cli *client.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		out, err := exec.CommandContext(ctx, "docker", "stack", "rm", name).CombinedOutput()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Errorf("cleanup: docker stack rm %s: %v: %s", name, err, strings.TrimSpace(string(out)))
			return
		case <-time.After(2 * time.Second):
		}
	}
	of := client.Filters{}.Add("label", "com.docker.stack.namespace="+name)
	for {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: of})
		if err != nil {
			t.Errorf("cleanup: containers of stack %s: %v", name, err)
			return
		}
		if len(cs.Items) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Errorf("cleanup: %d containers of stack %s still there", len(cs.Items), name)
			return
		case <-time.After(time.Second):
		}
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: of})
	if err != nil {
		t.Errorf("cleanup: volumes of stack %s: %v", name, err)
		return
	}
	for _, v := range vs.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil {
			t.Errorf("cleanup: remove volume %s: %v", v.Name, err)
		}
	}
}
