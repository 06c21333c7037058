package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/term"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
)

// Rotate makes the next version of the logical secret name from value and
// moves the services that use it there, through the deploy's pipeline:
// lock, plan, a rolling update, convergence, the whole-stack restore on
// failure, a record. Every spec stays as it runs but for that one secret.
// With dryRun nothing is created and the plan names the version a real run
// would make; a rotation that does not go through removes the version it
// made.
func (s *Session) Rotate(ctx context.Context, name string, value secret.Value, dryRun bool) error {
	c := Change{Action: ledger.Rotate, What: "a new version of secret " + name, DryRun: dryRun}
	c.Offline = func(cs *Checks) {
		if err := s.CheckSecretName(name); err != nil {
			cs.Add("secret", "", errors.Unwrap(err))
			return
		}
		if declared, _ := logicalSecrets(s.Env, s.Lookup); !slices.Contains(declared, name) && s.proxySecret(name) {
			cs.Add("secret", "", fmt.Errorf("%s is the proxy's: go tool mage secrets:set %s %s, then deploy:proxy %s (after its key or certificate, if that changes too)", name, s.Env.Name, name, s.Env.Name))
			return
		}
		if !dryRun {
			if err := checkSecretValue(value); err != nil {
				cs.Add("secret", "", fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	// The version is made once the lock is held and every check before it
	// passed; when the rotation does not go through, Undo removes it, or
	// the next deploy would move the services to it unasked.
	var made *SecretVersion
	c.Undo = func() {
		if made != nil {
			s.dropVersion(*made)
		}
	}
	c.Prepare = func(ctx context.Context, live *Live, cs *Checks) *Target {
		desired := &Desired{Stack: s.Env.Stack, Services: map[string]swarm.ServiceSpec{}}
		var users []string
		for _, svc := range slices.Sorted(maps.Keys(live.Services)) {
			spec := live.Spec(svc)
			desired.Services[svc] = spec
			for _, r := range spec.TaskTemplate.ContainerSpec.Secrets {
				if l, _, ok := logicalOf(s.Env.Stack, r.SecretName); ok && l == name {
					users = append(users, svc)
				}
			}
		}
		if cs.Failed() {
			return nil // the lock or a check above: make nothing
		}
		versions := versionsOf(s.Env.Stack, slices.Collect(maps.Values(live.Secrets)))
		next := SecretVersion{Logical: name, N: 1}
		if cur, ok := versions.Newest(name); ok {
			next.N = cur.N + 1
		}
		next.Name = secretName(s.Env.Stack, name, next.N)
		if p := nameProblem("secret", next.Name); p != "" {
			cs.Add("secret", "", errors.New(p))
			return nil
		}
		if dryRun {
			cs.Add("secret", fmt.Sprintf("a real run creates %s from standard input", next.Name), nil)
		} else {
			v, err := SetSecret(ctx, s.API, s.Env.Stack, name, value)
			if err != nil {
				cs.Add("secret", "", err)
				return nil
			}
			next, made = v, &v
			cs.Add("secret", fmt.Sprintf("created %s (its value is not shown)", v.Name), nil)
		}
		live.Secrets[next.Name] = swarm.Secret{ID: next.ID, Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: next.Name}}}
		versions[name] = append([]SecretVersion{next}, versions[name]...)
		if len(users) == 0 {
			cs.Add("services", fmt.Sprintf("no service of stack %s uses %s yet: the next deploy that does takes %s", s.Env.Stack, name, next.Name), nil)
		} else {
			cs.Add("services", fmt.Sprintf("%s move to %s", strings.Join(slices.Compact(users), ", "), next.Name), nil)
		}
		need := relink(s.Env.Stack, desired.Services, versions, name)
		if !checkSecrets(desired.Services, need, live, s.Env.Name, cs) {
			return nil
		}
		return &Target{Desired: desired}
	}
	return s.Run(ctx, c)
}

// dropVersion removes the version a rotation made that did not go through.
// The engine refuses to remove a secret a service still uses (after a
// restore that did not converge, say): that version stays, with a warning.
func (s *Session) dropVersion(v SecretVersion) {
	ctx, cancel := s.cleanup()
	defer cancel()
	if _, err := s.API.SecretRemove(ctx, v.ID, client.SecretRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		fmt.Fprintf(s.Out, "warning: secret %s, which this rotation created, could not be removed (%v): the next deploy moves to it; once no service uses it, remove it with docker secret rm %s\n", v.Name, err, v.Name)
		return
	}
	fmt.Fprintf(s.Out, "Secret: removed %s, which this rotation created; the next deploy keeps the version in use.\n", v.Name)
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
	b, err := io.ReadAll(io.LimitReader(r, maxSecretSize+2))
	if err != nil {
		return secret.Value{}, fmt.Errorf("read the value of %s from standard input: %w", name, err)
	}
	return checkRead(name, b)
}

func checkRead(name string, b []byte) (secret.Value, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	v := secret.New(s)
	if err := checkSecretValue(v); err != nil {
		return secret.Value{}, fmt.Errorf("secret %s: %w (e.g. printf '%%s' \"$VALUE\" | go tool mage secrets:set ENV %s)", name, err, name)
	}
	return v, nil
}
