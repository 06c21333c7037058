package health

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReadiness(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	deaf := func(context.Context) error { time.Sleep(3 * time.Second); return nil }

	tests := []struct {
		name     string
		checks   map[string]Check
		shutdown bool
		want     map[string]string
	}{
		{"no checks", nil, false, map[string]string{}},
		{"all pass", map[string]Check{"postgres": ok, "redis": ok}, false, map[string]string{}},
		{"one fails", map[string]Check{"postgres": down, "redis": ok}, false, map[string]string{"postgres": "connection refused"}},
		{"timeout", map[string]Check{"postgres": hang}, false, map[string]string{"postgres": "timed out after 50ms"}},
		{"check ignoring its deadline", map[string]Check{"redis": deaf, "postgres": ok}, false, map[string]string{"redis": "timed out after 50ms"}},
		{"shutting down", map[string]Check{"postgres": ok}, true, map[string]string{"shutdown": "shutting down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReadiness(50*time.Millisecond, tt.checks)
			if tt.shutdown {
				r.BeginShutdown()
			}
			start := time.Now()
			got := r.Check(t.Context())
			if time.Since(start) > time.Second {
				t.Errorf("Check took %s: the timeout did not apply", time.Since(start))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Check() = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("Check()[%q] = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestChecksRunConcurrently(t *testing.T) {
	slow := func(context.Context) error { time.Sleep(200 * time.Millisecond); return nil }
	r := NewReadiness(time.Second, map[string]Check{"a": slow, "b": slow, "c": slow})
	start := time.Now()
	if got := r.Check(t.Context()); len(got) != 0 {
		t.Fatal(got)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("three 200ms checks took %s; they should run in parallel", d)
	}
}
