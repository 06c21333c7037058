package envfile

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// secretName is what a logical secret may be called: a compose key that
// makes a valid Swarm name once prefixed with the stack.
var secretName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// ValidSecretName reports whether name may name a logical secret.
func ValidSecretName(name string) bool { return secretName.MatchString(name) }

// secretRef is one {{...}} of an init secret's template; what may be
// inside is checked when the file is read (checkInitSecrets).
var secretRef = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// checkInitSecrets checks an environment's init_secrets templates: every
// {{...}} is {{random}} or {{name}} of another init secret, no other {{ or
// }} is left (a typo would otherwise be kept as a literal part of the
// value), and no secret embeds itself. Each problem starts with the key at
// fault.
func checkInitSecrets(secrets map[string]string) []string {
	var errs []string
	keys := slices.Sorted(maps.Keys(secrets))
	for _, k := range keys {
		switch {
		case k == "random":
			errs = append(errs, "random: {{random}} stands for a random value; give the secret another name")
		case !ValidSecretName(k):
			errs = append(errs, fmt.Sprintf("%s: want letters, digits, '_', '.' or '-' in a secret's name, at most 64", k))
		}
		others := slices.DeleteFunc(slices.Clone(keys), func(o string) bool { return o == k })
		tmpl := secrets[k]
		for _, m := range secretRef.FindAllStringSubmatch(tmpl, -1) {
			if ref := m[1]; ref != "random" && !slices.Contains(others, ref) {
				errs = append(errs, fmt.Sprintf("%s: %s is neither {{random}} nor {{name}} of another init secret (%s)", k, m[0], cmpOr(strings.Join(others, ", "), "there is none")))
			}
		}
		if rest := secretRef.ReplaceAllString(tmpl, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
			errs = append(errs, fmt.Sprintf("%s: a {{ or }} that is not part of {{random}} or {{name}}", k))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if _, err := InitOrder(secrets); err != nil {
		errs = append(errs, strings.TrimPrefix(err.Error(), "init_secrets: "))
	}
	return errs
}

// InitRefs are the init secrets tmpl embeds the value of, each once.
func InitRefs(tmpl string) []string {
	var out []string
	for _, m := range secretRef.FindAllStringSubmatch(tmpl, -1) {
		if m[1] != "random" && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// RenderInitSecret fills in tmpl: {{random}} from random, {{name}} from
// values (the init secrets made before it, as InitOrder orders them).
func RenderInitSecret(tmpl string, values map[string]string, random func() string) string {
	return secretRef.ReplaceAllStringFunc(tmpl, func(m string) string {
		if ref := secretRef.FindStringSubmatch(m)[1]; ref != "random" {
			return values[ref]
		}
		return random()
	})
}

// InitOrder orders the init secrets so that each comes after those it
// embeds, by name otherwise: a run cut short between two creates then
// leaves a secret whose value the rest can still be made from, never one
// that embeds a value no secret holds.
func InitOrder(secrets map[string]string) ([]string, error) {
	var order []string
	done, visiting := map[string]bool{}, map[string]bool{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		if done[name] {
			return nil
		}
		path = append(slices.Clone(path), name)
		if visiting[name] {
			return fmt.Errorf("init_secrets: %s refers to itself through %s", name, strings.Join(path, " -> "))
		}
		tmpl, ok := secrets[name]
		if !ok {
			return fmt.Errorf("init_secrets.%s: {{%s}} is not another init secret", path[len(path)-2], name)
		}
		visiting[name] = true
		for _, ref := range InitRefs(tmpl) {
			if err := visit(ref, path); err != nil {
				return err
			}
		}
		done[name] = true
		order = append(order, name)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
