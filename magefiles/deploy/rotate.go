package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/term"

	"github.com/fractionate/service-template/internal/secret"
)

// Rotate makes the next version of the logical secret name from value and
// moves the services that use it there, through the deploy's pipeline:
// lock, plan, a rolling update, convergence, the whole-stack restore on
// failure, a record. Every spec stays as it runs but for that one secret.
// With dryRun nothing is created and the plan names the version a real run
// would make; a rotation that does not go through removes the version it
// made.
func (d *Deployer) Rotate(ctx context.Context, name string, value secret.Value, dryRun bool) error {
	start := time.Now()
	fmt.Fprintf(d.Out, "Rotating secret %s of %s (stack %s) through %s\n", name, d.Env.Name, d.Env.Stack, d.Endpoint)
	if err := d.CheckSecretName(name); err != nil {
		return err
	}
	if !dryRun {
		if err := CheckSecretValue(value); err != nil {
			return Refused(fmt.Errorf("secret %s: %w", name, err))
		}
	}
	var cs Checks
	if !checkManager(ctx, d.API, d.Endpoint, &cs) {
		cs.Print(d.Out)
		return Refused(cs.Err())
	}
	// The version is made in the build step, before the rest of preflight
	// (nodes, smoke, the record's sequence) has run: when the rotation
	// does not go through, it is removed again, or the next deploy would
	// move the services to it unasked.
	var made *SecretVersion
	err := d.run(ctx, start, &cs, "rotate", dryRun, "", func(live *Live, cs *Checks) (*Desired, Release, int, error) {
		desired := &Desired{Stack: d.Env.Stack, Services: map[string]swarm.ServiceSpec{}}
		var users []string
		for _, svc := range slices.Sorted(maps.Keys(live.Services)) {
			spec := live.Spec(svc)
			desired.Services[svc] = spec
			for _, r := range spec.TaskTemplate.ContainerSpec.Secrets {
				if l, _, ok := LogicalOf(d.Env.Stack, r.SecretName); ok && l == name {
					users = append(users, svc)
				}
			}
		}
		if cs.Failed() {
			return nil, Release{}, 0, nil // the lock: make nothing
		}
		versions := VersionsOf(d.Env.Stack, slices.Collect(maps.Values(live.Secrets)))
		next := SecretVersion{Logical: name, N: 1}
		if cur, ok := versions.Newest(name); ok {
			next.N = cur.N + 1
		}
		next.Name = SecretName(d.Env.Stack, name, next.N)
		if dryRun {
			cs.Add("secret", fmt.Sprintf("a real run creates %s from standard input", next.Name), nil)
		} else {
			v, err := SetSecret(ctx, d.API, d.Env.Stack, name, value)
			if err != nil {
				cs.Add("secret", "", err)
				return nil, Release{}, 0, nil
			}
			next, made = v, &v
			cs.Add("secret", fmt.Sprintf("created %s (its value is not shown)", v.Name), nil)
		}
		live.Secrets[next.Name] = swarm.Secret{ID: next.ID, Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: next.Name}}}
		versions[name] = append([]SecretVersion{next}, versions[name]...)
		if len(users) == 0 {
			cs.Add("services", fmt.Sprintf("no service of stack %s uses %s yet: the next deploy that does takes %s", d.Env.Stack, name, next.Name), nil)
		} else {
			cs.Add("services", fmt.Sprintf("%s move to %s", strings.Join(slices.Compact(users), ", "), next.Name), nil)
		}
		need := relink(d.Env.Stack, desired.Services, versions, name)
		if !checkSecrets(desired.Services, need, live, d.Env.Name, cs) {
			return nil, Release{}, 0, nil
		}
		return desired, Release{}, 0, nil
	})
	if err != nil && made != nil {
		d.dropVersion(*made)
	}
	return err
}

// dropVersion removes the version a rotation made that did not go through.
// The engine refuses to remove a secret a service still uses (after a
// restore that did not converge, say): that version stays, with a warning.
func (d *Deployer) dropVersion(v SecretVersion) {
	ctx, cancel := d.cleanup()
	defer cancel()
	if _, err := d.API.SecretRemove(ctx, v.ID, client.SecretRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		fmt.Fprintf(d.Out, "warning: secret %s, which this rotation created, could not be removed (%v): the next deploy moves to it; once no service uses it, remove it with docker secret rm %s\n", v.Name, err, v.Name)
		return
	}
	fmt.Fprintf(d.Out, "Secret: removed %s, which this rotation created; the next deploy keeps the version in use.\n", v.Name)
}

// ReadSecret reads a secret's value for secrets:set and secrets:rotate:
// from a terminal after a prompt on prompt, without echo; otherwise all of
// in (at most MaxSecretSize), less one trailing newline, which `echo value
// |` adds. It refuses an empty value. The value is never an argument, so
// it stays out of shell history and process lists.
func ReadSecret(in *os.File, prompt io.Writer, name string) (secret.Value, error) {
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(prompt, "Value of %s (not shown): ", name)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return secret.Value{}, fmt.Errorf("read the value of %s: %w", name, err)
		}
		return checkRead(name, b)
	}
	return readSecretFrom(in, name)
}

func readSecretFrom(r io.Reader, name string) (secret.Value, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSecretSize+2))
	if err != nil {
		return secret.Value{}, fmt.Errorf("read the value of %s from standard input: %w", name, err)
	}
	return checkRead(name, b)
}

func checkRead(name string, b []byte) (secret.Value, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	v := secret.New(s)
	if err := CheckSecretValue(v); err != nil {
		return secret.Value{}, fmt.Errorf("secret %s: %w (e.g. printf '%%s' \"$VALUE\" | go tool mage secrets:set ENV %s)", name, err, name)
	}
	return v, nil
}
