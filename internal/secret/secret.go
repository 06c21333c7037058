// Package secret holds sensitive values (database URLs, registry
// passwords) for the service and the tooling alike. Every way of printing a
// Value (fmt verbs, JSON, text, slog) shows a placeholder; only Reveal
// returns it, so a leak has to be written on purpose.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what a set Value prints as.
const Redacted = "[REDACTED]"

// Value is a sensitive string.
type Value struct{ v string }

// New wraps v.
func New(v string) Value { return Value{v: v} }

// Reveal returns the value, for the one place that needs it (a driver, an
// auth header).
func (s Value) Reveal() string { return s.v }

// IsSet reports whether a value is present.
func (s Value) IsSet() bool { return s.v != "" }

// String is Redacted, or "" when unset so an absent value reads as absent.
func (s Value) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString covers %#v.
func (s Value) GoString() string { return `secret.Value("` + s.String() + `")` }

// Format covers every verb, %x and %q included.
func (s Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, s.GoString())
		return
	}
	_, _ = fmt.Fprint(f, s.String())
}

// MarshalJSON never emits the value.
func (s Value) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText never emits the value.
func (s Value) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue never emits the value.
func (s Value) LogValue() slog.Value { return slog.StringValue(s.String()) }
