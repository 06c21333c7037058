package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/internal/dockertest"
)

// hungServer accepts TCP connections and never answers: a database that is
// up but stuck. It counts the connections its clients still hold open.
type hungServer struct {
	ln    net.Listener
	mu    sync.Mutex
	open  int
	total int
}

func startHungServer(t *testing.T) *hungServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hungServer{ln: ln}
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			conns = append(conns, c)
			s.open++
			s.total++
			s.mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(io.Discard, c) // until the client hangs up
				s.mu.Lock()
				s.open--
				s.mu.Unlock()
			})
		}
	}()
	return s
}

func (s *hungServer) counts() (open, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open, s.total
}

// request is one call to the notes API and how it ended.
type request struct{ method, path, body string }

var notesRequests = []request{
	{"GET", "/v1/notes", ""},
	{"GET", "/v1/notes/1", ""},
	{"POST", "/v1/notes", `{"title":"x"}`},
}

// fire sends n requests at once, cycling through notesRequests, and returns
// each one's status, Retry-After and duration.
func (a *app) fire(t *testing.T, n int) (codes []int, retryAfter []string, took []time.Duration) {
	t.Helper()
	codes, retryAfter, took = make([]int, n), make([]string, n), make([]time.Duration, n)
	client := http.Client{Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rq := notesRequests[i%len(notesRequests)]
			req, err := http.NewRequestWithContext(t.Context(), rq.method, a.base+rq.path, strings.NewReader(rq.body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			resp, err := client.Do(req)
			took[i] = time.Since(start)
			if err != nil {
				t.Errorf("%s %s: %v", rq.method, rq.path, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i], retryAfter[i] = resp.StatusCode, resp.Header.Get("Retry-After")
		})
	}
	wg.Wait()
	return codes, retryAfter, took
}

// checkPrompt503s fails unless every request got a 503 with Retry-After
// within bound, and returns the slowest.
func checkPrompt503s(t *testing.T, codes []int, retryAfter []string, took []time.Duration, bound time.Duration) time.Duration {
	t.Helper()
	var slowest time.Duration
	for i := range codes {
		slowest = max(slowest, took[i])
		if codes[i] != http.StatusServiceUnavailable || retryAfter[i] == "" || took[i] > bound {
			t.Errorf("request %d: %d (Retry-After %q) after %s; want 503 with Retry-After within %s", i, codes[i], retryAfter[i], took[i], bound)
		}
	}
	return slowest
}

// A database that accepts connections and never answers costs a client
// database.query_timeout, not its own patience: 503 with Retry-After, the
// log names the dependency, and no connection attempt outlives the
// timeout (they would hold pool slots for good).
func TestHungDatabaseAnswers503Promptly(t *testing.T) {
	db := startHungServer(t)
	const timeout = 500 * time.Millisecond
	a := startApp(t, map[string]string{
		"DATABASE_URL":           "postgres://app:pw@" + db.ln.Addr().String() + "/app?sslmode=disable",
		"DATABASE_QUERY_TIMEOUT": timeout.String(),
		"DATABASE_MAX_CONNS":     "2",
		"LOG_LEVEL":              "info",
	})
	for wave := range 2 { // the second wave finds no slot held by the first
		codes, retryAfter, took := a.fire(t, 9)
		slowest := checkPrompt503s(t, codes, retryAfter, took, timeout+time.Second)
		t.Logf("wave %d: 9 requests (pool of 2) against a hung database; the slowest answered in %s (database.query_timeout %s)", wave+1, slowest, timeout)
	}
	deadline := time.Now().Add(timeout + 2*time.Second)
	for {
		open, total := db.counts()
		if open == 0 {
			t.Logf("the app opened %d connections in all; none is left open", total)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections to the hung database still open %s after the last request", open, total, timeout+2*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := a.out.String()
	if !strings.Contains(logs, `"msg":"dependency unavailable","dependency":"postgres"`) ||
		!strings.Contains(logs, "no answer within database.query_timeout (500ms)") {
		t.Errorf("the log does not name the dependency and the timeout:\n%s", logs)
	}
}

// Postgres down (connection refused) is a 503 too, at once.
func TestDatabaseDownAnswers503(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(dockertest.FreePort(t)))
	a := startApp(t, map[string]string{"DATABASE_URL": "postgres://app:pw@" + addr + "/app?sslmode=disable", "LOG_LEVEL": "info"})
	codes, retryAfter, took := a.fire(t, 3)
	checkPrompt503s(t, codes, retryAfter, took, time.Second)
	if code, body := a.get(t, "/ready"); code != 503 || body["checks"].(map[string]any)["postgres"] != "connection refused" {
		t.Errorf("/ready = %d %v, want 503 with postgres: connection refused", code, body)
	}
	if !strings.Contains(a.out.String(), `"dependency":"postgres"`) {
		t.Errorf("the log does not name the dependency:\n%s", a.out.String())
	}
}

// A real Postgres, paused mid-service (its pooled connections stall
// mid-query): requests get a 503 within database.query_timeout, /ready
// says timeout, and once it resumes the service serves again: no slot is
// left held.
func TestIntegrationPausedPostgresAnswers503Promptly(t *testing.T) {
	pg := dbtest.Dedicated(t)
	if out, err := appCmd(t, map[string]string{"DATABASE_URL": pg.AdminURL}, "migrate", "up").CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	const timeout = time.Second
	a := startApp(t, map[string]string{
		"DATABASE_URL":           pg.AdminURL,
		"DATABASE_QUERY_TIMEOUT": timeout.String(),
		"DATABASE_MAX_CONNS":     "3",
		"LOG_LEVEL":              "info",
	})
	codes, _, _ := a.fire(t, 6) // fills the pool with live connections
	for i, c := range codes {
		if c >= 500 {
			t.Fatalf("request %d before the pause: %d", i, c)
		}
	}

	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	id := pg.Container.GetContainerID()
	if _, err := cli.ContainerPause(t.Context(), id, client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("pause postgres: %v", err)
	}
	paused := true
	t.Cleanup(func() { // before the container's own clean-up, which cannot stop it paused
		if paused {
			// t.Context() is cancelled before clean-ups run.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
				t.Logf("cleanup: unpause postgres: %v", err)
			}
		}
	})

	codes, retryAfter, took := a.fire(t, 9)
	slowest := checkPrompt503s(t, codes, retryAfter, took, timeout+1500*time.Millisecond)
	t.Logf("9 requests (pool of 3) against a paused Postgres; the slowest answered in %s (database.query_timeout %s)", slowest, timeout)
	if code, body := a.get(t, "/ready"); code != 503 || body["checks"].(map[string]any)["postgres"] != "timeout" {
		t.Errorf("/ready = %d %v, want 503 with postgres: timeout", code, body)
	}

	if _, err := cli.ContainerUnpause(t.Context(), id, client.ContainerUnpauseOptions{}); err != nil {
		t.Fatalf("unpause postgres: %v", err)
	}
	paused = false
	start := time.Now()
	for {
		codes, _, _ := a.fire(t, 6)
		ok := true
		for _, c := range codes {
			ok = ok && c < 500
		}
		if ok {
			t.Logf("serving again %s after Postgres resumed", time.Since(start))
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("still failing 10s after Postgres resumed: %v", codes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(a.out.String(), `"msg":"dependency unavailable","dependency":"postgres"`) {
		t.Errorf("the log does not name the dependency:\n%s", a.out.String())
	}
}
