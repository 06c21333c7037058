package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const canary = "hunter2-canary"
	s := New(canary)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", s, "in", struct{ S Value }{s})
	var text strings.Builder
	slog.New(slog.NewTextHandler(&text, nil)).Info("x", "s", s)
	js, _ := json.Marshal(struct{ S Value }{s})
	txt, _ := s.MarshalText()
	outputs := map[string]string{
		"Sprint":   fmt.Sprint(s),
		"verbs":    fmt.Sprintf("%v %s %q %x %X %#v %+v %10s %d", s, s, s, s, s, s, s, s, s),
		"struct":   fmt.Sprintf("%v %+v %#v", struct{ S Value }{s}, &struct{ S Value }{s}, struct{ S Value }{s}),
		"error":    fmt.Errorf("connect %v: %w", s, errors.New("refused")).Error(),
		"json":     string(js),
		"text":     string(txt),
		"slog":     logged.String(),
		"slogtext": text.String(),
	}
	hex := fmt.Sprintf("%x", canary)
	for name, out := range outputs {
		if strings.Contains(out, canary) || strings.Contains(out, hex) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s shows no placeholder: %s", name, out)
		}
	}
	if s.Reveal() != canary || !s.IsSet() {
		t.Fatal("Reveal lost the value")
	}
}

func TestUnsetValueIsEmpty(t *testing.T) {
	var s Value
	if s.IsSet() || s.String() != "" || fmt.Sprint(s) != "" {
		t.Fatalf("unset value prints %q", fmt.Sprint(s))
	}
}
