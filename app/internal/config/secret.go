package config

import (
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// Secret holds a sensitive value. Every way of printing it (fmt verbs, JSON,
// slog) shows a placeholder; only Reveal returns the value, so a leak has to
// be written on purpose.
type Secret struct{ value string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the value, for the one place that needs it (a driver).
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether a value is present.
func (s Secret) IsSet() bool { return s.value != "" }

func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// Format covers every verb, %x and %q included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, s.GoString())
		return
	}
	_, _ = fmt.Fprint(f, s.String())
}

// MarshalJSON never emits the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText never emits the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue never emits the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
