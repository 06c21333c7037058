package devdb

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/joho/godotenv"
)

// Where the service reads a database URL from besides its config files
// (app/internal/config): the variables, and the Docker secret's file name.
var urlVariables = []string{"DATABASE_URL", "DATABASE_URL_FILE"}

const (
	secretFile        = "database_url"
	defaultSecretsDir = "/run/secrets"
)

// ConfiguredOutside says where, short of building the service and asking
// it, a database seems to be configured: DATABASE_URL or
// DATABASE_URL_FILE in the environment or in the .env file the service
// reads (DOTENV_FILE, default .env), or a database_url secret file
// (SECRETS_DIR, default /run/secrets). It returns "" when there is none:
// then `run` will need its Postgres container and can check for Docker
// before it compiles anything. The service's own answer (Configured)
// still decides; this only errs on the side of not checking early.
func ConfiguredOutside(getenv func(string) string, readFile func(string) ([]byte, error)) string {
	for _, v := range urlVariables {
		if getenv(v) != "" {
			return "the environment's " + v
		}
	}
	dotenv := getenv("DOTENV_FILE")
	if dotenv == "" {
		dotenv = ".env"
	}
	if data, err := readFile(dotenv); err == nil {
		vars, err := godotenv.Parse(bytes.NewReader(data))
		if err != nil {
			return dotenv + " (it does not parse: the service will say more)"
		}
		for _, v := range urlVariables {
			if vars[v] != "" {
				return v + " in " + dotenv
			}
		}
	}
	dir := getenv("SECRETS_DIR")
	if dir == "" {
		dir = defaultSecretsDir
	}
	if _, err := readFile(filepath.Join(dir, secretFile)); err == nil {
		return filepath.Join(dir, secretFile)
	}
	return ""
}

// NoEngine is the one-line error of a `run` that needs its Postgres
// container when the Docker engine at host does not answer: the cause,
// and the two ways on.
func NoEngine(host string, err error) error {
	return fmt.Errorf("run needs a Docker engine for its Postgres container, and the one at %s does not answer (%s); start Docker, or set DATABASE_URL to a database of your own to run without the container", host, rootCause(err))
}

// rootCause is the part of a connection error that says what went wrong
// (dial unix /var/run/docker.sock: connect: no such file or directory),
// without the layers of context around it.
func rootCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err.Error()
		}
		err = inner
	}
}
