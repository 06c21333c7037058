// Package config builds the service's configuration from five layers, lowest
// to highest priority:
//
//  1. defaults in code;
//  2. config/{APP_ENV}.json (committed, embedded in the binary, no secrets);
//  3. .env (local development only; never read in staging or production);
//  4. environment variables;
//  5. Docker secrets: files under /run/secrets/ and the NAME_FILE convention.
//
// Every value remembers the layer it came from, so `app config` can show it
// and every error can name the key and the layer at fault.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fractionate/service-template/internal/secret"
)

// The environments a deployment can be; config/{name}.json exists for each.
const (
	Development = "development"
	Test        = "test"
	Staging     = "staging"
	Production  = "production"
)

// Environments lists the valid values of APP_ENV.
var Environments = []string{Development, Test, Staging, Production}

// Config is the whole configuration of the service.
type Config struct {
	Env string // APP_ENV

	Log struct {
		Level  slog.Level
		Format string // "json" or "text"
	}
	HTTP struct {
		Host         string
		Port         int
		ReadTimeout  time.Duration
		WriteTimeout time.Duration
		IdleTimeout  time.Duration
		MaxBodyBytes int64
	}
	Metrics struct {
		// Port serves Prometheus metrics on http.host, apart from the API
		// so that the proxy, which routes only http.port, never exposes
		// them; 0 turns the listener off.
		Port int
	}
	Shutdown struct {
		// DrainDelay is how long the server keeps serving after /ready turns
		// 503, so load balancers stop sending traffic before it closes.
		DrainDelay time.Duration
		Timeout    time.Duration // for in-flight requests to finish
	}
	Database struct {
		URL      secret.Value
		MaxConns int
		// QueryTimeout bounds every database call made for a request (and
		// each connection attempt), so a sick database costs a client a
		// prompt 503, not a hung request.
		QueryTimeout time.Duration
	}
	Readiness struct {
		Timeout time.Duration // per dependency check
	}
	Redis struct {
		URL secret.Value // optional; /ready checks Redis only when set
	}

	entries []Entry
}

// Entry is one effective setting and the layer it came from.
type Entry struct {
	Key    string `json:"key"`
	Value  string `json:"value"` // redacted for secrets
	Source string `json:"source"`
	Secret bool   `json:"secret,omitempty"`
}

// Entries returns every setting, sorted by key, secrets redacted.
func (c *Config) Entries() []Entry { return slices.Clone(c.entries) }

// Addr is the listen address.
func (c *Config) Addr() string { return net.JoinHostPort(c.HTTP.Host, strconv.Itoa(c.HTTP.Port)) }

// MetricsAddr is the metrics listener's address, "" when it is off.
func (c *Config) MetricsAddr() string {
	if c.Metrics.Port == 0 {
		return ""
	}
	return net.JoinHostPort(c.HTTP.Host, strconv.Itoa(c.Metrics.Port))
}

// RequireDatabase reports a missing database URL, for the commands that need one.
func (c *Config) RequireDatabase() error {
	if !c.Database.URL.IsSet() {
		return errors.New("database.url is not set: set DATABASE_URL, DATABASE_URL_FILE or the Docker secret database_url")
	}
	return nil
}

// field describes one key: its default, the JSON type it takes in the
// committed files, and how to parse it into the struct.
type field struct {
	key    string
	def    string
	kind   kind
	secret bool
	parse  func(string) error
}

// kind is the JSON type a key takes in config/{env}.json. Every other layer
// is text, parsed the same way.
type kind int

const (
	kindString   kind = iota
	kindInteger       // a JSON number, parsed as an integer
	kindDuration      // a JSON string such as "5s"
)

// want says what a value of kind k looks like in JSON, for errors.
func (k kind) want() string {
	switch k {
	case kindInteger:
		return "a JSON number"
	case kindDuration:
		return `a JSON string holding a duration, like "5s"`
	}
	return "a JSON string"
}

// accepts reports whether a JSON value of type jsonType ("string",
// "number", ...) can hold k.
func (k kind) accepts(jsonType string) bool {
	if k == kindInteger {
		return jsonType == "number"
	}
	return jsonType == "string"
}

// envName is the environment variable of a key: http.port -> HTTP_PORT.
func (f field) envName() string {
	return strings.ToUpper(strings.NewReplacer(".", "_").Replace(f.key))
}

// secretFile is the Docker secret file name of a key: database.url -> database_url.
func (f field) secretFile() string { return strings.ToLower(f.envName()) }

func (c *Config) fields() []field {
	return []field{
		{key: "log.level", def: "info", parse: logLevel(&c.Log.Level)},
		{key: "log.format", def: "json", parse: oneOf(&c.Log.Format, "json", "text")},
		{key: "http.host", def: "", parse: host(&c.HTTP.Host)},
		{key: "http.port", def: "8080", kind: kindInteger, parse: intIn(&c.HTTP.Port, 1, 65535)},
		{key: "http.read_timeout", def: "10s", kind: kindDuration, parse: positiveDuration(&c.HTTP.ReadTimeout)},
		{key: "http.write_timeout", def: "15s", kind: kindDuration, parse: positiveDuration(&c.HTTP.WriteTimeout)},
		{key: "http.idle_timeout", def: "60s", kind: kindDuration, parse: positiveDuration(&c.HTTP.IdleTimeout)},
		{key: "http.max_body_bytes", def: "65536", kind: kindInteger, parse: intIn(&c.HTTP.MaxBodyBytes, 1, 64<<20)},
		{key: "metrics.port", def: "9090", kind: kindInteger, parse: intIn(&c.Metrics.Port, 0, 65535)},
		{key: "shutdown.drain_delay", def: "5s", kind: kindDuration, parse: duration(&c.Shutdown.DrainDelay)},
		{key: "shutdown.timeout", def: "20s", kind: kindDuration, parse: positiveDuration(&c.Shutdown.Timeout)},
		{key: "database.url", secret: true, parse: serviceURL(&c.Database.URL, "postgres", "postgresql")},
		{key: "database.max_conns", def: "10", kind: kindInteger, parse: intIn(&c.Database.MaxConns, 1, 1000)},
		{key: "database.query_timeout", def: "3s", kind: kindDuration, parse: positiveDuration(&c.Database.QueryTimeout)},
		{key: "readiness.timeout", def: "1s", kind: kindDuration, parse: positiveDuration(&c.Readiness.Timeout)},
		{key: "redis.url", secret: true, parse: serviceURL(&c.Redis.URL, "redis", "rediss")},
	}
}

// Parsers. Their errors say what is wrong with the value; the caller adds the
// key and the layer. Parsers of secrets never quote the value.

func logLevel(dst *slog.Level) func(string) error {
	return func(s string) error {
		if err := dst.UnmarshalText([]byte(s)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s)) {
			return fmt.Errorf("%q is not a log level; want debug, info, warn or error", s)
		}
		return nil
	}
}

func oneOf(dst *string, allowed ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(allowed, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
		}
		*dst = s
		return nil
	}
}

var hostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// host accepts "", a host name, or an IP address (IPv6 with or without
// brackets, stored without them).
func host(dst *string) func(string) error {
	return func(s string) error {
		h := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if _, err := netip.ParseAddr(h); err != nil && h != "" && !hostname.MatchString(h) {
			return fmt.Errorf("%q is not a host name or IP address", s)
		}
		*dst = h
		return nil
	}
}

func intIn[T int | int64](dst *T, lo, hi T) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		if n < int64(lo) || n > int64(hi) {
			return fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
		}
		*dst = T(n)
		return nil
	}
}

func duration(dst *time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 500ms, 5s, 1m)", s)
		}
		if d < 0 {
			return fmt.Errorf("%s is negative", d)
		}
		*dst = d
		return nil
	}
}

func positiveDuration(dst *time.Duration) func(string) error {
	parse := duration(dst)
	return func(s string) error {
		if err := parse(s); err != nil {
			return err
		}
		if *dst == 0 {
			return errors.New("must be greater than zero")
		}
		return nil
	}
}

// serviceURL accepts an empty value (unset) or a URL with one of the schemes
// and a host. Its errors never contain the value: it holds a password.
func serviceURL(dst *secret.Value, schemes ...string) func(string) error {
	return func(s string) error {
		if s == "" {
			*dst = secret.Value{}
			return nil
		}
		u, err := url.Parse(s)
		if err != nil {
			return errors.New("is not a valid URL (value not shown: it is a secret)")
		}
		if !slices.Contains(schemes, u.Scheme) {
			return fmt.Errorf("must be a URL with scheme %s (value not shown: it is a secret)", strings.Join(schemes, " or "))
		}
		if u.Host == "" {
			return errors.New("has no host (value not shown: it is a secret)")
		}
		*dst = secret.New(s)
		return nil
	}
}
