// Package appconfig checks the committed configuration files (config/*.json)
// with the service's own loader: it runs the service binary's `config`
// command once per file, with APP_ENV naming the file's environment, so that
// lint and service can never disagree about what a valid file is. The
// tooling does not import the service's packages; it asks the binary.
package appconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Check runs bin config for every *.json file in dir (the config/ directory
// the binary was built from), naming each file as label/NAME. The binary
// runs with APP_ENV and nothing else of the caller's environment: a
// variable or a .env file that overrides a key would hide a bad value in
// the file. Secrets are redacted by the binary and stdout is not kept.
func Check(ctx context.Context, bin, dir, label string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: no *.json configuration files", label)
	}
	sort.Strings(files)
	// An empty directory for the working directory (no .env), the secrets
	// directory and the .env path.
	empty, err := os.MkdirTemp("", "appconfig-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(empty)
	var errs []error
	for _, f := range files {
		env := strings.TrimSuffix(filepath.Base(f), ".json")
		name := label + "/" + filepath.Base(f)
		cmd := exec.CommandContext(ctx, bin, "config")
		cmd.Dir = empty
		cmd.Env = Environ(env, empty)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			errs = append(errs, fmt.Errorf("%s: the service refuses it (APP_ENV=%s app config):\n%s",
				name, env, indent(strings.TrimSpace(stderr.String()))))
		default:
			return fmt.Errorf("%s: run %s config: %w", name, bin, err)
		}
	}
	return errors.Join(errs...)
}

// Environ is the whole environment the binary gets for env: APP_ENV, and
// the secrets directory and .env file pointed at empty (nothing in them).
func Environ(env, empty string) []string {
	return []string{
		"APP_ENV=" + env,
		"SECRETS_DIR=" + empty,
		"DOTENV_FILE=" + filepath.Join(empty, ".env"),
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
