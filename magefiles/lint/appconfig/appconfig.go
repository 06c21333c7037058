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
	// An empty directory for the working directory (no .env) and the
	// secrets directory, and an empty file for DOTENV_FILE: a file named
	// there must exist.
	tmp, err := os.MkdirTemp("", "appconfig-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	empty, emptyFile := filepath.Join(tmp, "empty"), filepath.Join(tmp, "empty.env")
	if err := os.Mkdir(empty, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		env := strings.TrimSuffix(filepath.Base(f), ".json")
		name := label + "/" + filepath.Base(f)
		cmd := exec.CommandContext(ctx, bin, "config")
		cmd.Dir = empty
		cmd.Env = Environ(env, empty, emptyFile)
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

// Environ is the whole environment the binary gets for env: APP_ENV, the
// secrets directory pointed at the empty directory emptyDir, and the .env
// file at the empty file emptyFile.
func Environ(env, emptyDir, emptyFile string) []string {
	return []string{
		"APP_ENV=" + env,
		"SECRETS_DIR=" + emptyDir,
		"DOTENV_FILE=" + emptyFile,
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
