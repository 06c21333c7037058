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
	"strconv"
	"strings"

	"github.com/joho/godotenv"

	configfiles "github.com/fractionate/service-template/config"
	"github.com/fractionate/service-template/internal/secret"
)

// DefaultSecretsDir is where Docker mounts secrets.
const DefaultSecretsDir = "/run/secrets"

// MaxDotEnvBytes caps the .env file: it is a handful of local settings, and
// a runaway file should fail fast, not fill memory.
const MaxDotEnvBytes = 1 << 20

// toolingSection is a top-level JSON key left to the deployment tooling
// (per-environment deploy settings). Nothing reads it today; the service
// tolerates it so that tooling can, and only checks it is well-formed JSON.
const toolingSection = "deploy"

// Sources says where each layer comes from. Tests build one by hand; the
// service uses FromProcess.
type Sources struct {
	Environ map[string]string // the process environment
	Files   fs.FS             // holds {env}.json
	DotEnv  string            // path of the .env file; "" skips the layer
	// DotEnvDefault says DotEnv is the default ./.env, which may be absent.
	// A file the operator named (DOTENV_FILE) must exist.
	DotEnvDefault bool
	SecretsDir    string // "" skips the directory part of the secrets layer
	// SecretsDirDefault says SecretsDir is the default location, which may
	// be absent (outside Swarm). A directory the operator named must exist.
	SecretsDirDefault bool
}

// FromProcess returns the sources of a real run: the process environment, the
// embedded config files, DOTENV_FILE (default ./.env) and SECRETS_DIR
// (default /run/secrets).
func FromProcess() Sources {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	dir, isDefault := env["SECRETS_DIR"], false
	if dir == "" {
		dir, isDefault = DefaultSecretsDir, true
	}
	dotenv, dotenvDefault := env["DOTENV_FILE"], false
	if dotenv == "" {
		dotenv, dotenvDefault = ".env", true
	}
	return Sources{
		Environ: env, Files: configfiles.Files,
		DotEnv: dotenv, DotEnvDefault: dotenvDefault,
		SecretsDir: dir, SecretsDirDefault: isDefault,
	}
}

// Warning is something in the configuration that does not stop the service
// but that the operator should hear about (a .env key the service ignores).
// Load returns them; the caller logs them once it has a logger.
type Warning struct {
	Source  string // the file at fault
	Key     string
	Message string // never holds a value: it may be a secret
}

func (w Warning) String() string { return w.Source + ": " + w.Key + ": " + w.Message }

// raw is a value before parsing, with the layer that set it.
type raw struct {
	value  string
	source string
}

// Load merges the layers and parses the result. It reports every problem it
// finds, not just the first, each naming the key (or file) and the layer,
// and returns the warnings (unknown .env keys) for the caller to log.
func Load(src Sources) (*Config, []Warning, error) {
	env := src.Environ["APP_ENV"]
	envSource := "env APP_ENV"
	if env == "" {
		env, envSource = Development, "default"
	}
	if !slices.Contains(Environments, env) {
		return nil, nil, fmt.Errorf("APP_ENV (from %s): unknown environment %q; want one of %s",
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
	var warnings []Warning
	values := make(map[string]raw, len(fields))
	set := func(key, value, source string) { values[key] = raw{value, source} }

	// 1. Defaults.
	for _, f := range fields {
		set(f.key, f.def, "default")
	}

	// 2. config/{env}.json: strict, as it is committed. Each key is known,
	// holds the JSON type its field takes, and appears once.
	name := env + ".json"
	label := "config/" + name
	data, err := fs.ReadFile(src.Files, name)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", label, err))
	} else {
		leaves, err := parseJSON(label, data)
		errs = append(errs, err)
		var misplaced []string // keys of values that hold an object
		for _, l := range leaves {
			f, ok := byKey[l.key]
			switch {
			case slices.ContainsFunc(misplaced, func(k string) bool { return strings.HasPrefix(l.key, k+".") }):
				// inside an object already refused
			case !ok && l.jsonType == "object":
				// a section, such as "http"; its keys are leaves of their own
			case !ok:
				errs = append(errs, fmt.Errorf("%s: unknown key %q", label, l.key))
			case f.secret:
				errs = append(errs, fmt.Errorf("%s: key %q is a secret and must not be in a committed file; set %s or the Docker secret %s",
					label, l.key, f.envName(), f.secretFile()))
			case l.jsonType == "null":
				errs = append(errs, fmt.Errorf("%s: key %q is null; remove it to use the default", label, l.key))
			case !f.kind.accepts(l.jsonType):
				if l.jsonType == "object" {
					misplaced = append(misplaced, l.key)
				}
				errs = append(errs, fmt.Errorf("%s: key %q must be %s, not a JSON %s", label, l.key, f.kind.want(), l.jsonType))
			default:
				set(l.key, l.value, label)
			}
		}
	}

	// 3. .env, for local development only.
	if src.DotEnv != "" && env != Staging && env != Production {
		kv, err := readDotEnv(src.DotEnv, src.DotEnvDefault)
		errs = append(errs, err)
		for _, name := range sortedKeys(kv) {
			if name == "APP_ENV" {
				errs = append(errs, fmt.Errorf("%s: APP_ENV cannot be set in .env (it decides whether .env is read); set it in the environment", src.DotEnv))
				continue
			}
			if f, ok := byEnv[name]; ok {
				set(f.key, kv[name], src.DotEnv)
				continue
			}
			// Compose and other tools read .env too, so an unknown key is
			// not an error; but a typo must not go unnoticed.
			warnings = append(warnings, Warning{Source: src.DotEnv, Key: name, Message: unknownDotEnvKey(name, fields)})
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
	secretsDir := src.SecretsDir
	if secretsDir != "" {
		if err := checkSecretsDir(secretsDir, src.SecretsDirDefault); errors.Is(err, fs.ErrNotExist) && src.SecretsDirDefault {
			secretsDir = ""
		} else if err != nil {
			errs = append(errs, err)
			secretsDir = ""
		}
	}
	for _, f := range fields {
		if secretsDir != "" {
			path := filepath.Join(secretsDir, f.secretFile())
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
	if cfg.Metrics.Port != 0 && cfg.Metrics.Port == cfg.HTTP.Port {
		errs = append(errs, fmt.Errorf("metrics.port (from %s) and http.port (from %s) are both %d: the metrics need a port of their own (0 turns them off)",
			values["metrics.port"].source, values["http.port"].source, cfg.Metrics.Port))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, warnings, err
	}
	cfg.entries = append(cfg.entries, Entry{Key: "app_env", Value: env, Source: envSource})
	sort.Slice(cfg.entries, func(i, j int) bool { return cfg.entries[i].Key < cfg.entries[j].Key })
	return cfg, warnings, nil
}

// checkSecretsDir reports a secrets directory that is missing (wrapping
// fs.ErrNotExist) or is not a directory.
func checkSecretsDir(dir string, isDefault bool) error {
	setBy := "SECRETS_DIR"
	if isDefault {
		setBy = "the default secrets directory"
	}
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: directory does not exist: %w", setBy, dir, fs.ErrNotExist)
	case err != nil:
		return fmt.Errorf("%s %s: %w", setBy, dir, err)
	case !info.IsDir():
		return fmt.Errorf("%s %s: not a directory", setBy, dir)
	}
	return nil
}

// unknownDotEnvKey says what happens to a .env key the service does not
// know, and which key it probably meant.
func unknownDotEnvKey(name string, fields []field) string {
	const ignored = "not a setting of the service, which ignores it (other tools reading .env, such as Docker Compose, may use it)"
	switch {
	case name == "SECRETS_DIR" || name == "DOTENV_FILE":
		return "read from the environment only; the service ignores it in .env"
	case strings.HasSuffix(name, "_FILE"):
		for _, f := range fields {
			if name == f.envName()+"_FILE" {
				return "NAME_FILE is read from the environment only; the service ignores it in .env (set " + f.envName() + " in .env instead)"
			}
		}
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.envName()
	}
	if guess := closest(name, names); guess != "" {
		return ignored + "; did you mean " + guess + "?"
	}
	return ignored
}

// closest returns the candidate nearest to name when it is near enough to be
// a typo (case aside, at most two edits, and few for a short name), else "".
func closest(name string, candidates []string) string {
	upper := strings.ToUpper(name)
	best, bestDist := "", 3
	for _, c := range candidates {
		d := editDistance(upper, c)
		if d < bestDist && d*3 <= len(c) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours (PROT for PORT) cost one.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// leaf is one value of the JSON layer under its dotted key, with its JSON
// type: "string", "number", "boolean", "null", "array" or "object".
type leaf struct {
	key, value, jsonType string
}

// parseJSON flattens a JSON object into dotted keys: {"http":{"port":8080}}
// gives http.port=8080 of type number. It refuses duplicate keys at any
// depth (encoding/json would silently keep the last) and keys that cannot
// be dotted. The top-level deploy section is checked for duplicates only.
func parseJSON(label string, data []byte) ([]leaf, error) {
	w := &jsonWalker{label: label, dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	tok, err := w.dec.Token()
	if err != nil {
		return nil, w.syntax(data, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%s: the top level must be a JSON object", label)
	}
	if err := w.object("", false); err != nil {
		return nil, w.syntax(data, err)
	}
	if _, err := w.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: invalid JSON: unexpected data after the top-level object", label)
	}
	return w.leaves, errors.Join(w.errs...)
}

type jsonWalker struct {
	label  string
	dec    *json.Decoder
	leaves []leaf
	errs   []error // problems with keys; the walk goes on
}

// syntax describes a decoding error with its line.
func (w *jsonWalker) syntax(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("%s: invalid JSON on line %d: %w", w.label, line, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: invalid JSON: unexpected end of file", w.label)
	}
	return fmt.Errorf("%s: invalid JSON: %w", w.label, err)
}

// object reads the members of an object whose '{' was read, under the
// dotted prefix; in the tooling section it only checks for duplicates.
func (w *jsonWalker) object(prefix string, tooling bool) error {
	seen := make(map[string]bool)
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string) // encoding/json guarantees a string key here
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		bad := k == "" || strings.Contains(k, ".")
		switch {
		case seen[k]:
			w.errs = append(w.errs, fmt.Errorf("%s: duplicate key %q", w.label, key))
		case bad && !tooling:
			w.errs = append(w.errs, fmt.Errorf("%s: invalid key %q under %q", w.label, k, prefix))
		}
		seen[k] = true
		if err := w.value(key, tooling || bad || (prefix == "" && k == toolingSection)); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // '}'
		return err
	}
	return nil
}

// value reads one value under key; with skip it records nothing but still
// checks nested objects for duplicates.
func (w *jsonWalker) value(key string, skip bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	var l leaf
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			// Recorded too, so that an object where a value belongs is
			// refused by name; sections are objects and pass.
			if !skip {
				w.leaves = append(w.leaves, leaf{key: key, jsonType: "object"})
			}
			return w.object(key, skip)
		}
		for w.dec.More() { // '['
			if err := w.value(key, true); err != nil {
				return err
			}
		}
		if _, err := w.dec.Token(); err != nil { // ']'
			return err
		}
		l = leaf{key: key, jsonType: "array"}
	case string:
		l = leaf{key: key, value: t, jsonType: "string"}
	case json.Number:
		l = leaf{key: key, value: t.String(), jsonType: "number"}
	case bool:
		l = leaf{key: key, value: strconv.FormatBool(t), jsonType: "boolean"}
	case nil:
		l = leaf{key: key, jsonType: "null"}
	}
	if !skip {
		w.leaves = append(w.leaves, l)
	}
	return nil
}

// readDotEnv parses a .env file with godotenv. A missing default file is not
// an error: the layer is optional. A missing file named by DOTENV_FILE is: a
// typo there would otherwise drop every setting in it without a word. Errors
// name the file and line, never a value.
func readDotEnv(path string, isDefault bool) (map[string]string, error) {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && isDefault:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("DOTENV_FILE %s: file does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDotEnvBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxDotEnvBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes (1 MiB), the limit for a .env file", path, MaxDotEnvBytes)
	}
	kv, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		// godotenv quotes the text near the error, which may hold a secret:
		// say where and what instead.
		line, what := dotEnvError(data)
		if line == 0 {
			return nil, fmt.Errorf("%s: not a valid .env file (check quoting and KEY=value syntax)", path)
		}
		return nil, fmt.Errorf("%s:%d: %s", path, line, what)
	}
	return kv, nil
}

// dotEnvError finds the statement godotenv rejects and says what is wrong
// with it, without quoting it. Statements are single lines except quoted
// values, which may span lines: a statement whose quote is still open takes
// in the next line, and is parsed again only once a line brings a quote.
// It returns line 0 when no statement fails on its own.
func dotEnvError(data []byte) (line int, what string) {
	lines := strings.SplitAfter(string(data), "\n")
	start := 0
	var stmt strings.Builder
	for i, l := range lines {
		stmt.WriteString(l)
		open := start < i // the statement began on an earlier line with its quote open
		if open && !strings.ContainsAny(l, `"'`) && i < len(lines)-1 {
			continue
		}
		_, err := godotenv.Unmarshal(stmt.String())
		switch {
		case err == nil:
			start = i + 1
			stmt.Reset()
		case strings.HasPrefix(err.Error(), "unterminated quoted value"):
			if i == len(lines)-1 {
				return start + 1, "a quoted value starts here and is never closed"
			}
		case open:
			return start + 1, fmt.Sprintf("a quoted value starts here and is never closed as it should be (the next quote, on line %d, is followed by more text)", i+1)
		default:
			return start + 1, "not a KEY=value line (a key holds letters, digits, '_' and '.'; quote a value with spaces or '#')"
		}
	}
	return 0, ""
}

// readSecretFile reads a secret, dropping the trailing newline that
// `echo ... | docker secret create` leaves. An empty file is an error: it
// would silently unset the value, leaving the operator to wonder why the
// key they set is missing.
func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("secret file %s: %w", path, fs.ErrNotExist)
		}
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty; put the value in it or remove it", path)
	}
	return v, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
