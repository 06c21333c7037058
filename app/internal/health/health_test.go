package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fractionate/service-template/app/internal/dbtest"
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
		want     map[string]string // the errors' text
	}{
		{"no checks", nil, false, map[string]string{}},
		{"all pass", map[string]Check{"postgres": ok, "redis": ok}, false, map[string]string{}},
		{"one fails", map[string]Check{"postgres": down, "redis": ok}, false, map[string]string{"postgres": "connection refused"}},
		{"timeout", map[string]Check{"postgres": hang}, false, map[string]string{"postgres": "no answer within readiness.timeout (50ms): context deadline exceeded"}},
		{"check ignoring its deadline", map[string]Check{"redis": deaf, "postgres": ok}, false, map[string]string{"redis": "no answer within readiness.timeout (50ms): context deadline exceeded"}},
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
				if got[k] == nil || got[k].Error() != v {
					t.Errorf("Check()[%q] = %v, want %q", k, got[k], v)
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

// Cause turns real errors, which name users, databases, hosts and ports,
// into a fixed few words.
func TestCause(t *testing.T) {
	addr, refused := dbtest.Refused(t, "app", "appdb")

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused, as pgx reports it", refused, "connection refused"},
		{"our deadline", fmt.Errorf("no answer within readiness.timeout (1s): %w", context.DeadlineExceeded), "timeout"},
		{"a socket deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "timeout"},
		{"reset", fmt.Errorf("read tcp 10.0.0.5:5432: %w", syscall.ECONNRESET), "connection lost"},
		{"eof", fmt.Errorf("unexpected EOF from db.internal:5432: %w", io.ErrUnexpectedEOF), "connection lost"},
		{"dns", &net.DNSError{Err: "no such host", Name: "db.internal", IsNotFound: true}, "host not found"},
		{"wrong password", fmt.Errorf("user=app database=appdb: %w", &pgconn.PgError{Code: "28P01", Message: `password authentication failed for user "app"`}), "authentication failed"},
		{"no database", &pgconn.PgError{Code: "3D000", Message: `database "appdb" does not exist`}, "database does not exist"},
		{"starting", &pgconn.PgError{Code: "57P03"}, "starting up"},
		{"shutting down", ErrShuttingDown, "shutting down"},
		{"anything else", errors.New("failed to connect to `user=app database=appdb`: 10.1.2.3:5432: weird"), "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Cause(tt.err)
			if got != tt.want {
				t.Errorf("Cause(%v) = %q, want %q", tt.err, got, tt.want)
			}
			for _, leak := range []string{"app", "db.internal", "127.0.0.1", "10.", "5432", addr} {
				if strings.Contains(got, leak) {
					t.Errorf("Cause(%v) = %q shows %q", tt.err, got, leak)
				}
			}
		})
	}
}
