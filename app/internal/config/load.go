package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/joho/godotenv"

	configfiles "github.com/fractionate/service-template/config"
	"github.com/fractionate/service-template/internal/secret"
)

// DefaultSecretsDir is where Docker mounts secrets.
const DefaultSecretsDir = "/run/secrets"

// toolingSection is the top-level JSON key the deployment tooling owns
// (per-environment deploy settings); the service ignores it.
const toolingSection = "deploy"

// Sources says where each layer comes from. Tests build one by hand; the
// service uses FromProcess.
type Sources struct {
	Environ    map[string]string // the process environment
	Files      fs.FS             // holds {env}.json
	DotEnv     string            // path of the .env file; "" skips the layer
	SecretsDir string            // "" skips the directory part of the secrets layer
}

// FromProcess returns the sources of a real run: the process environment, the
// embedded config files, ./.env and SECRETS_DIR (default /run/secrets).
func FromProcess() Sources {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	dir := env["SECRETS_DIR"]
	if dir == "" {
		dir = DefaultSecretsDir
	}
	dotenv := env["DOTENV_FILE"]
	if dotenv == "" {
		dotenv = ".env"
	}
	return Sources{Environ: env, Files: configfiles.Files, DotEnv: dotenv, SecretsDir: dir}
}

// raw is a value before parsing, with the layer that set it.
type raw struct {
	value  string
	source string
}

// Load merges the layers and parses the result. It reports every problem it
// finds, not just the first, each naming the key (or file) and the layer.
func Load(src Sources) (*Config, error) {
	env := src.Environ["APP_ENV"]
	envSource := "env APP_ENV"
	if env == "" {
		env, envSource = Development, "default"
	}
	if !slices.Contains(Environments, env) {
		return nil, fmt.Errorf("APP_ENV (from %s): unknown environment %q; want one of %s",
			envSource, env, strings.Join(Environments, ", "))
	}

	cfg := &Config{Env: env}
	fields := cfg.fields()
	byKey := make(map[string]field, len(fields))
	byEnv := make(map[string]field, len(fields))
	for _, f := range fields {
		byKey[f.key] = f
		byEnv[f.envName()] = f
	}

	var errs []error
	values := make(map[string]raw, len(fields))
	set := func(key, value, source string) { values[key] = raw{value, source} }

	// 1. Defaults.
	for _, f := range fields {
		set(f.key, f.def, "default")
	}

	// 2. config/{env}.json
	name := env + ".json"
	label := "config/" + name
	data, err := fs.ReadFile(src.Files, name)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", label, err))
	} else {
		kv, err := parseJSON(label, data)
		errs = append(errs, err)
		for _, key := range sortedKeys(kv) {
			f, ok := byKey[key]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: unknown key %q", label, key))
			case f.secret:
				errs = append(errs, fmt.Errorf("%s: key %q is a secret and must not be in a committed file; set %s or the Docker secret %s",
					label, key, f.envName(), f.secretFile()))
			default:
				set(key, kv[key], label)
			}
		}
	}

	// 3. .env, for local development only.
	if src.DotEnv != "" && env != Staging && env != Production {
		kv, err := readDotEnv(src.DotEnv)
		errs = append(errs, err)
		for _, name := range sortedKeys(kv) {
			if name == "APP_ENV" {
				errs = append(errs, fmt.Errorf("%s: APP_ENV cannot be set in .env (it decides whether .env is read); set it in the environment", src.DotEnv))
				continue
			}
			if f, ok := byEnv[name]; ok {
				set(f.key, kv[name], src.DotEnv)
			}
		}
	}

	// 4. Environment variables.
	for _, f := range fields {
		if v, ok := src.Environ[f.envName()]; ok {
			set(f.key, v, "env "+f.envName())
		}
	}

	// 5. Docker secrets: the directory, then NAME_FILE, which names a file
	// explicitly and so wins.
	for _, f := range fields {
		if src.SecretsDir != "" {
			path := filepath.Join(src.SecretsDir, f.secretFile())
			v, err := readSecretFile(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
			default:
				set(f.key, v, "secret "+path)
			}
		}
		if path, ok := src.Environ[f.envName()+"_FILE"]; ok {
			v, err := readSecretFile(path)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (from env %s_FILE): %w", f.key, f.envName(), err))
				continue
			}
			set(f.key, v, "file "+path+" (env "+f.envName()+"_FILE)")
		}
	}

	// Parse the winners.
	for _, f := range fields {
		r := values[f.key]
		if err := f.parse(r.value); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w", f.key, r.source, err))
			continue
		}
		shown := r.value
		if f.secret && r.value != "" {
			shown = secret.Redacted
		}
		cfg.entries = append(cfg.entries, Entry{Key: f.key, Value: shown, Source: r.source, Secret: f.secret})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.entries = append(cfg.entries, Entry{Key: "app_env", Value: env, Source: envSource})
	sort.Slice(cfg.entries, func(i, j int) bool { return cfg.entries[i].Key < cfg.entries[j].Key })
	return cfg, nil
}

// parseJSON flattens a JSON object into dotted keys: {"http":{"port":8080}}
// becomes http.port=8080. Values must be strings, numbers or booleans.
func parseJSON(label string, data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", label, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: invalid JSON: unexpected data after the top-level object", label)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: the top level must be a JSON object", label)
	}
	delete(obj, toolingSection)
	out := make(map[string]string)
	var errs []error
	var walk func(prefix string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "" || strings.Contains(k, ".") {
					errs = append(errs, fmt.Errorf("%s: invalid key %q under %q", label, k, key))
					continue
				}
				walk(strings.TrimPrefix(key+"."+k, "."), child)
			}
		case string:
			out[key] = v
		case json.Number:
			out[key] = v.String()
		case bool:
			out[key] = fmt.Sprint(v)
		case nil:
			errs = append(errs, fmt.Errorf("%s: key %q is null; remove it to use the default", label, key))
		default:
			errs = append(errs, fmt.Errorf("%s: key %q must be a string, number or boolean", label, key))
		}
	}
	walk("", obj)
	return out, errors.Join(errs...)
}

// readDotEnv parses a .env file with godotenv. A missing file is not an error:
// the layer is optional.
func readDotEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	kv, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		// godotenv quotes the text near the error, which may hold a secret:
		// say where instead.
		return nil, fmt.Errorf("%s: not a valid .env file%s (check quoting and KEY=value syntax)", path, badLine(data))
	}
	return kv, nil
}

// badLine finds the first line godotenv rejects on its own. It is a hint
// only: a quoted value spanning lines can move the blame.
func badLine(data []byte) string {
	for i, line := range strings.Split(string(data), "\n") {
		if _, err := godotenv.Unmarshal(line); err != nil {
			return fmt.Sprintf(" near line %d", i+1)
		}
	}
	return ""
}

// readSecretFile reads a secret, dropping the trailing newline that
// `echo ... | docker secret create` leaves.
func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("secret file %s: %w", path, fs.ErrNotExist)
		}
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
