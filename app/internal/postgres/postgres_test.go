package postgres

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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/internal/secret"
)

// Unavailable tells a database that could not answer from one that
// answered with an error about the query.
func TestUnavailable(t *testing.T) {
	_, refused := dbtest.Refused(t, "app", "app")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused, as pgx reports it", refused, true},
		{"our deadline", fmt.Errorf("list notes: %w", context.DeadlineExceeded), true},
		{"a socket deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"server gone mid-reply", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"no rows", pgx.ErrNoRows, false},
		{"a constraint", &pgconn.PgError{Code: "23514", Message: "violates check constraint"}, false},
		{"a syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"the caller gave up", context.Canceled, false},
		{"anything else", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unavailable(tt.err); got != tt.want {
				t.Errorf("Unavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// Wait asks again while nothing answers, and gives up at its bound with
// the reason.
func TestWaitGivesUpAtItsBound(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	pool, err := Open(t.Context(), secret.New("postgres://u:p@"+addr+"/db?sslmode=disable"), 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	said := 0
	start := time.Now()
	err = Wait(t.Context(), pool, 1500*time.Millisecond, func(error) { said++ })
	if err == nil || !strings.Contains(err.Error(), "did not answer within 1.5s") || said != 1 {
		t.Fatalf("Wait = %v (said %d times), want the bound's error, said once", err, said)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("gave up after %s, before its bound", took)
	}
}
