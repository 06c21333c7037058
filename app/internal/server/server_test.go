package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestGracefulShutdown: after the context ends, readiness fails at once, a
// slow request in flight still completes, and Run returns nil.
func TestGracefulShutdown(t *testing.T) {
	var stopping atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if stopping.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	slowStarted := make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(slowStarted)
		select {
		case <-time.After(2 * time.Second): // outlasts the drain: still in flight at Shutdown
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
			t.Error("in-flight request was cancelled")
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, slog.New(slog.DiscardHandler), ln, mux, Options{
			ReadTimeout: time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Second,
			DrainDelay: time.Second, ShutdownTimeout: 5 * time.Second,
			BeginShutdown: func() { stopping.Store(true) },
		})
	}()
	waitFor(t, base+"/ready", http.StatusOK)

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	<-slowStarted
	stop()

	// During the drain the server still answers, with readiness failing.
	waitFor(t, base+"/ready", http.StatusServiceUnavailable)
	if got := <-slow; got != "done" {
		t.Fatalf("slow request got %q, want done", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := http.Get(base + "/ready"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

func TestShutdownTimeoutIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		time.Sleep(2 * time.Second)
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, slog.New(slog.DiscardHandler), ln, h, Options{
			ReadTimeout: time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Second,
			ShutdownTimeout: 200 * time.Millisecond,
		})
	}()
	go func() { _, _ = http.Get("http://" + ln.Addr().String()) }()
	<-started
	stop()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Fatalf("Run = %v, want the shutdown timeout error", err)
	}
}

func waitFor(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d", url, status)
}
