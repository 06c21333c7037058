package deploy

// Versioned secrets. Swarm secrets are immutable (moby#29882): a new value
// is a new secret, and a service moves to it with an update. The stack
// files name a logical secret (database_url); the Swarm holds its versions
// as <stack>_<logical>_v<N>, labelled with the stack, the logical name and
// N, and a deploy maps each logical secret to its newest version. N is a
// counter, not a hash of the value: a short hash of a weak password in a
// name anyone with API access can list would let them brute-force it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
	"github.com/fractionate/service-template/magefiles/deploy/envfile"
	"github.com/fractionate/service-template/magefiles/deploy/ledger"
	"github.com/fractionate/service-template/magefiles/proxy"
)

// secretAPI is what versioned secrets call.
type secretAPI interface {
	SecretList(ctx context.Context, options client.SecretListOptions) (client.SecretListResult, error)
	SecretCreate(ctx context.Context, options client.SecretCreateOptions) (client.SecretCreateResult, error)
	SecretRemove(ctx context.Context, id string, options client.SecretRemoveOptions) (client.SecretRemoveResult, error)
}

const (
	labelSecret        = ledger.LabelPrefix + "secret"         // the logical name
	labelSecretVersion = ledger.LabelPrefix + "secret-version" // N
)

// maxSecretSize is the largest value Swarm stores in a secret.
const maxSecretSize = 500 * 1024

// secretName is the Swarm name of version n of a logical secret.
func secretName(stack, logical string, n int) string {
	return fmt.Sprintf("%s_%s_v%d", stack, logical, n)
}

// mergeLabels is a's labels with b's over them.
func mergeLabels(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}

// SecretVersion is one version of a logical secret, as the Swarm has it.
type SecretVersion struct {
	Logical string
	N       int
	Name    string // the Swarm secret's name
	ID      string
	Created time.Time
}

// SecretVersions are a stack's secret versions by logical name, newest
// first.
type SecretVersions map[string][]SecretVersion

// versionsOf picks the versions of stack's secrets out of the Swarm's
// secrets, by their labels.
func versionsOf(stack string, secrets []swarm.Secret) SecretVersions {
	out := SecretVersions{}
	for _, s := range secrets {
		l := s.Spec.Labels
		if l[ledger.LabelStack] != stack || l[labelSecret] == "" {
			continue
		}
		n, err := strconv.Atoi(l[labelSecretVersion])
		if err != nil || n < 1 {
			continue // not one of ours, whatever its labels say
		}
		out[l[labelSecret]] = append(out[l[labelSecret]], SecretVersion{
			Logical: l[labelSecret], N: n, Name: s.Spec.Name, ID: s.ID, Created: s.CreatedAt,
		})
	}
	for k := range out {
		slices.SortFunc(out[k], func(a, b SecretVersion) int { return b.N - a.N })
	}
	return out
}

// Newest is the version a deploy uses.
func (v SecretVersions) Newest(logical string) (SecretVersion, bool) {
	if len(v[logical]) == 0 {
		return SecretVersion{}, false
	}
	return v[logical][0], true
}

// logicalOf names the logical secret behind a Swarm secret name of stack:
// <stack>_<logical>_v<N>, or <stack>_<logical> as deploys before versioning
// named them. ok is false for a name of another stack's or a name the
// stack files give explicitly.
func logicalOf(stack, name string) (logical string, n int, ok bool) {
	rest, found := strings.CutPrefix(name, stack+"_")
	if !found || rest == "" {
		return "", 0, false
	}
	if i := strings.LastIndex(rest, "_v"); i > 0 {
		if n, err := strconv.Atoi(rest[i+2:]); err == nil && n > 0 {
			return rest[:i], n, true
		}
	}
	return rest, 0, true
}

// listVersions reads stack's secret versions from the Swarm.
func listVersions(ctx context.Context, api secretAPI, stack string) (SecretVersions, error) {
	ss, err := api.SecretList(ctx, client.SecretListOptions{Filters: client.Filters{}.Add("label", ledger.LabelStack+"="+stack)})
	if err != nil {
		return nil, fmt.Errorf("list the secrets of stack %s: %w", stack, err)
	}
	return versionsOf(stack, ss.Items), nil
}

// checkSecretValue refuses what Swarm would refuse, or what is surely a
// mistake, saying so without quoting the value.
func checkSecretValue(v secret.Value) error {
	switch n := len(v.Reveal()); {
	case n == 0:
		return errors.New("the value is empty: give it on standard input")
	case n > maxSecretSize:
		return fmt.Errorf("the value is %d bytes; Swarm keeps at most %d", n, maxSecretSize)
	}
	return nil
}

// SetSecret creates the next version of logical in stack and returns it.
// The value goes to the engine and nowhere else.
func SetSecret(ctx context.Context, api secretAPI, stack, logical string, v secret.Value) (SecretVersion, error) {
	return setSecret(ctx, api, stack, logical, v, nil)
}

// setSecret is SetSecret with labels of the caller's on the version.
func setSecret(ctx context.Context, api secretAPI, stack, logical string, v secret.Value, labels map[string]string) (SecretVersion, error) {
	if !envfile.ValidSecretName(logical) {
		return SecretVersion{}, fmt.Errorf("secret name %q: want letters, digits, '_', '.' or '-', at most 64", logical)
	}
	if err := checkSecretValue(v); err != nil {
		return SecretVersion{}, fmt.Errorf("secret %s: %w", logical, err)
	}
	versions, err := listVersions(ctx, api, stack)
	if err != nil {
		return SecretVersion{}, err
	}
	n := 1
	if cur, ok := versions.Newest(logical); ok {
		n = cur.N + 1
	}
	name := secretName(stack, logical, n)
	spec := swarm.SecretSpec{
		Annotations: swarm.Annotations{Name: name, Labels: mergeLabels(labels, map[string]string{
			ledger.LabelStack: stack, labelSecret: logical, labelSecretVersion: strconv.Itoa(n),
		})},
		Data: []byte(v.Reveal()),
	}
	r, err := api.SecretCreate(ctx, client.SecretCreateOptions{Spec: spec})
	if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
		return SecretVersion{}, fmt.Errorf("create secret %s: it exists (another secrets:set at the same moment?); run it again", name)
	}
	if err != nil {
		return SecretVersion{}, fmt.Errorf("create secret %s: %w", name, err)
	}
	return SecretVersion{Logical: logical, N: n, Name: name, ID: r.ID, Created: time.Now()}, nil
}

// bindSecrets points the stack's logical secrets at their newest versions
// and adds the preflight line; false when one has none. Secrets the files
// name explicitly (secrets.x.name) must exist under that name.
func (st *Stack) bindSecrets(versions SecretVersions, live *Live, cs *Checks) bool {
	used := map[string]bool{}
	for _, s := range st.Config.Services {
		for _, ref := range s.Secrets {
			used[ref.Source] = true
		}
	}
	var found, missing, absent []string
	for _, k := range slices.Sorted(maps.Keys(used)) {
		sc, ok := st.Config.Secrets[k]
		if !ok || !sc.External.External {
			continue // the loader has already refused it
		}
		if sc.Name != k {
			if _, ok := live.Secrets[sc.Name]; !ok {
				absent = append(absent, sc.Name)
			} else {
				found = append(found, sc.Name)
			}
			continue
		}
		v, ok := versions.Newest(k)
		if !ok {
			missing = append(missing, k)
			continue
		}
		sc.Name = v.Name
		st.Config.Secrets[k] = sc
		found = append(found, fmt.Sprintf("%s v%d", k, v.N))
	}
	var errs []string
	if len(missing) > 0 {
		hint := ""
		for _, k := range missing {
			if _, ok := live.Secrets[st.Env.Stack+"_"+k]; ok {
				hint = fmt.Sprintf("; %s_%s is an unversioned secret from before versioning: give its value again with secrets:set", st.Env.Stack, k)
			}
		}
		errs = append(errs, fmt.Sprintf("no version of %s: create each with go tool mage secrets:set %s NAME (the value is read from standard input)%s",
			strings.Join(missing, ", "), st.Env.Name, hint))
	}
	if len(absent) > 0 {
		errs = append(errs, fmt.Sprintf("missing %s (named explicitly in the stack files): create each with printf '%%s' \"$VALUE\" | docker secret create NAME - (against environment %s's endpoint)",
			strings.Join(absent, ", "), st.Env.Name))
	}
	if len(errs) > 0 {
		cs.Add("secrets", "", errors.New(strings.Join(errs, "; ")))
		return false
	}
	cs.Add("secrets", fmt.Sprintf("%d present (%s)", len(found), strings.Join(found, ", ")), nil)
	return true
}

// logicalSecrets are the external secrets env's stack files declare
// without an explicit name: the ones secrets:set versions.
func logicalSecrets(env *envfile.Environment, getenv func(string) (string, bool)) ([]string, error) {
	st, err := loadStack(env, Release{Repository: env.Image, Tag: "v0.0.0"}, getenv)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, sc := range st.Config.Secrets {
		if sc.External.External && sc.Name == k {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

// relink points every secret reference of specs whose logical secret is
// in only (all when only is empty) at that secret's newest version, and
// returns the Swarm names the specs then need. A recorded release restores
// code, never old credentials: the old version may have been revoked or
// pruned since.
func relink(stack string, specs map[string]swarm.ServiceSpec, versions SecretVersions, only ...string) []string {
	need := map[string]bool{}
	for name, spec := range specs {
		cspec := *spec.TaskTemplate.ContainerSpec
		refs := make([]*swarm.SecretReference, len(cspec.Secrets))
		for i, r := range cspec.Secrets {
			c := *r
			if logical, _, ok := logicalOf(stack, c.SecretName); ok && (len(only) == 0 || slices.Contains(only, logical)) {
				if v, ok := versions.Newest(logical); ok {
					c.SecretName, c.SecretID = v.Name, v.ID
				}
			}
			need[c.SecretName] = true
			refs[i] = &c
		}
		// Sorted by name as the docker CLI's converter does: an order
		// change alone would restart the tasks.
		slices.SortStableFunc(refs, func(a, b *swarm.SecretReference) int { return strings.Compare(a.SecretName, b.SecretName) })
		cspec.Secrets = refs
		spec.TaskTemplate.ContainerSpec = &cspec
		specs[name] = spec
	}
	return slices.Sorted(maps.Keys(need))
}

// checkSecrets checks that every secret the specs name exists, and points
// the references at the live IDs.
func checkSecrets(specs map[string]swarm.ServiceSpec, names []string, live *Live, env string, cs *Checks) bool {
	var missing []string
	for _, n := range names {
		if _, ok := live.Secrets[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		cs.Add("secrets", "", fmt.Errorf("missing %s: create a version with go tool mage secrets:set %s NAME (the value is read from standard input)", strings.Join(missing, ", "), env))
		return false
	}
	for name, spec := range specs {
		cspec := *spec.TaskTemplate.ContainerSpec
		refs := make([]*swarm.SecretReference, len(cspec.Secrets))
		for i, r := range cspec.Secrets {
			c := *r
			c.SecretID = live.Secrets[c.SecretName].ID
			refs[i] = &c
		}
		cspec.Secrets = refs
		spec.TaskTemplate.ContainerSpec = &cspec
		specs[name] = spec
	}
	cs.Add("secrets", fmt.Sprintf("%d present (%s)", len(names), strings.Join(names, ", ")), nil)
	return true
}

// secretUsers maps each secret ID to the services whose specs use it, by
// name without the stack prefix for the stack's own.
func secretUsers(ctx context.Context, api serviceLister, stack string) (map[string][]string, error) {
	ss, err := api.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	users := map[string][]string{}
	for _, s := range ss.Items {
		cs := s.Spec.TaskTemplate.ContainerSpec
		if cs == nil {
			continue
		}
		for _, r := range cs.Secrets {
			users[r.SecretID] = append(users[r.SecretID], strings.TrimPrefix(s.Spec.Name, stack+"_"))
		}
	}
	for k := range users {
		slices.Sort(users[k])
		users[k] = slices.Compact(users[k])
	}
	return users, nil
}

// ListSecrets prints env's logical secrets: every version, when it was
// made, and which services use it. Never a value: the Engine API does not
// give them back.
func (s *Session) ListSecrets(ctx context.Context, w io.Writer) error {
	s.Ready(ctx)
	declared, err := logicalSecrets(s.Env, s.Lookup)
	if err != nil {
		return err
	}
	if err := s.listSecrets(ctx, w, "Secrets of "+s.Env.Name, s.Env.Stack, declared); err != nil {
		return err
	}
	if s.Env.Proxy == nil || s.Env.Proxy.CA != envfile.CASecrets {
		return nil
	}
	fmt.Fprintln(w)
	return s.listSecrets(ctx, w, "The proxy's certificate and key", s.Env.Proxy.Stack, proxy.Secrets)
}

// listSecrets prints the versions of stack's secrets, those declared
// first.
func (s *Session) listSecrets(ctx context.Context, w io.Writer, title, stack string, declared []string) error {
	versions, err := listVersions(ctx, s.API, stack)
	if err != nil {
		return err
	}
	users, err := secretUsers(ctx, s.API, stack)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, k := range declared {
		names[k] = true
	}
	for k := range versions {
		names[k] = true
	}
	fmt.Fprintf(w, "%s (stack %s); a deploy uses the newest version of each\n\n", title, stack)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tVERSION\tCREATED\tUSED BY\tNOTE")
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if len(versions[k]) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno version: go tool mage secrets:set %s %s\n", k, s.Env.Name, k)
			continue
		}
		for i, v := range versions[k] {
			var notes []string
			if i == 0 {
				notes = append(notes, "newest: deploys use it")
			}
			if !slices.Contains(declared, k) {
				notes = append(notes, "not in the stack files")
			}
			by := strings.Join(users[v.ID], ", ")
			fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\n", k, v.N, v.Created.Local().Format(time.DateTime), cmpOr(by, "-"), strings.Join(notes, "; "))
		}
	}
	return tw.Flush()
}

// PruneSecrets removes the versions of env's secrets that no service uses,
// keeping the newest keep of each whatever uses them, under the deploy lock
// (a restore in progress may need an older version). With the proxy's
// certificates from secrets, the proxy stack's versions of them are pruned
// too, under the proxy stack's lock. With dryRun it only says what it
// would remove.
func (s *Session) PruneSecrets(ctx context.Context, keep int, dryRun bool) error {
	s.Ready(ctx)
	if keep < 1 {
		return Refused(fmt.Errorf("-keep=%d: keep at least the newest version, which the next deploy uses", keep))
	}
	stacks := []*Session{s}
	if p := s.Env.Proxy; p != nil && p.CA == envfile.CASecrets && p.Stack != s.Env.Stack {
		ps := *s
		ps.Env = &envfile.Environment{Name: s.Env.Name, Stack: p.Stack}
		stacks = append(stacks, &ps)
	}
	removed := 0
	for _, st := range stacks {
		n, err := st.pruneStack(ctx, keep, dryRun)
		removed += n
		if err != nil {
			return err
		}
	}
	switch {
	case dryRun:
		fmt.Fprintln(s.Out, "Dry run: nothing was changed.")
	case removed == 0:
		fmt.Fprintln(s.Out, "Nothing to prune.")
	default:
		fmt.Fprintf(s.Out, "Pruned %d secret version(s).\n", removed)
	}
	return nil
}

// pruneStack prunes the secret versions of the session's stack and says
// how many it removed.
func (s *Session) pruneStack(ctx context.Context, keep int, dryRun bool) (int, error) {
	if !dryRun {
		release, err := s.holdLock(ctx, "secrets:prune of "+s.Env.Name)
		if err != nil {
			return 0, err
		}
		defer release()
	}
	versions, err := listVersions(ctx, s.API, s.Env.Stack)
	if err != nil {
		return 0, err
	}
	users, err := secretUsers(ctx, s.API, s.Env.Stack)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, p := range planPrune(versions, users, keep) {
		switch {
		case p.Keep != "":
			fmt.Fprintf(s.Out, "  keep    %s (%s)\n", p.Version.Name, p.Keep)
		case dryRun:
			fmt.Fprintf(s.Out, "  remove  %s (would be)\n", p.Version.Name)
		default:
			if _, err := s.API.SecretRemove(ctx, p.Version.ID, client.SecretRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				return removed, fmt.Errorf("remove secret %s: %w", p.Version.Name, err)
			}
			removed++
			fmt.Fprintf(s.Out, "  removed %s\n", p.Version.Name)
		}
	}
	return removed, nil
}

// pruneStep is one version and whether prune keeps it (and why).
type pruneStep struct {
	Version SecretVersion
	Keep    string // why it stays; "" when it goes
}

// planPrune decides, per version, whether it stays: the newest keep of
// each logical secret stay, and so does any version a service uses.
func planPrune(versions SecretVersions, users map[string][]string, keep int) []pruneStep {
	var out []pruneStep
	for _, k := range slices.Sorted(maps.Keys(versions)) {
		for i, v := range versions[k] {
			why := ""
			switch {
			case i < keep:
				why = fmt.Sprintf("one of the newest %d", keep)
			case len(users[v.ID]) > 0:
				why = "used by " + strings.Join(users[v.ID], ", ")
			}
			out = append(out, pruneStep{Version: v, Keep: why})
		}
	}
	return out
}

// CheckSecretName refuses a logical secret the environment's stack files
// do not declare: a typo would otherwise make a secret nothing uses.
func (s *Session) CheckSecretName(name string) error {
	declared, err := logicalSecrets(s.Env, s.Lookup)
	if err != nil {
		return Refused(err)
	}
	if !slices.Contains(declared, name) {
		if s.proxySecret(name) {
			return nil
		}
		return Refused(fmt.Errorf("environment %s's stack files declare no external secret %q; they declare: %s%s", s.Env.Name, name, strings.Join(declared, ", "), s.proxySecretsHint()))
	}
	return nil
}

// proxySecret says whether name is one of the proxy's own secrets (its
// certificate and key, with proxy.ca: secrets) rather than the app's: its
// versions belong to the proxy's stack, and deploy:proxy uses them.
func (s *Session) proxySecret(name string) bool {
	return s.Env.Proxy != nil && s.Env.Proxy.CA == envfile.CASecrets && slices.Contains(proxy.Secrets, name)
}

// NextStep says how a new version of name reaches the services.
func (s *Session) NextStep(name string) string {
	if declared, _ := logicalSecrets(s.Env, s.Lookup); !slices.Contains(declared, name) && s.proxySecret(name) {
		return fmt.Sprintf("go tool mage deploy:proxy %s moves Traefik to it (once the certificate and key match)", s.Env.Name)
	}
	return fmt.Sprintf("deploy (or go tool mage secrets:rotate %s %s) to move the services to it", s.Env.Name, name)
}

// proxySecretsHint names the proxy's secrets where there are some.
func (s *Session) proxySecretsHint() string {
	if s.Env.Proxy == nil || s.Env.Proxy.CA != envfile.CASecrets {
		return ""
	}
	return "; and the proxy (ca: secrets) " + strings.Join(proxy.Secrets, ", ")
}

// SetSecret creates the next version of the environment's logical secret
// name.
func (s *Session) SetSecret(ctx context.Context, name string, v secret.Value) (SecretVersion, error) {
	s.Ready(ctx)
	if err := s.CheckSecretName(name); err != nil {
		return SecretVersion{}, err
	}
	stack, labels := s.Env.Stack, map[string]string(nil)
	if declared, _ := logicalSecrets(s.Env, s.Lookup); !slices.Contains(declared, name) && s.proxySecret(name) {
		var err error
		if labels, err = proxyCertificateLabels(name, v); err != nil {
			return SecretVersion{}, Refused(fmt.Errorf("secret %s: %w", name, err))
		}
		stack = s.Env.Proxy.Stack
	}
	made, err := setSecret(ctx, s.API, stack, name, v, labels)
	if err != nil {
		return SecretVersion{}, Refused(err)
	}
	return made, nil
}

// proxyCertificateLabels checks a value of the proxy's certificate or key
// as it passes, and returns the public facts a deploy judges it by.
func proxyCertificateLabels(name string, v secret.Value) (map[string]string, error) {
	if name == proxy.KeySecret {
		pub, err := proxy.ParseKey([]byte(v.Reveal()))
		if err != nil {
			return nil, err
		}
		return proxy.KeyLabels(ledger.LabelPrefix, pub), nil
	}
	f, err := proxy.ParseCertificate([]byte(v.Reveal()), time.Now())
	if err != nil {
		return nil, err
	}
	return f.Labels(ledger.LabelPrefix), nil
}
