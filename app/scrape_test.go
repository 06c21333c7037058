package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fractionate/service-template/app/internal/config"
	"github.com/fractionate/service-template/app/internal/metrics"
	"github.com/fractionate/service-template/internal/scrape"
)

// TestScrape: one line per task and round, read from the service's own
// metrics handler, which deploy:top parses; a failure only when nothing
// answered.
func TestScrape(t *testing.T) {
	m := metrics.New()
	m.Start()
	m.Done("GET /v1/notes", 200, 20*time.Millisecond)
	m.Start()
	m.Done("GET /health", 200, time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	tests := []struct {
		name      string
		args      []string
		wantErr   string
		wantLines int
		wantOK    int
	}{
		{"one task", []string{srv.URL + "/metrics"}, "", 1, 1},
		{"two rounds", []string{"-count", "2", "-every", "10ms", srv.URL + "/metrics"}, "", 2, 2},
		{"one of two answers", []string{srv.URL + "/metrics", dead.URL + "/metrics"}, "", 2, 1},
		{"none answers", []string{dead.URL + "/metrics"}, "no scrape answered", 1, 0},
		{"every address", []string{"-all", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/metrics"}, "", -1, -1},
		{"not a URL", []string{"ftp://x/metrics"}, "not an http:// URL", 0, 0},
		{"no URL", nil, "scrape [-all]", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), append([]string{"scrape"}, tt.args...), config.Sources{}, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			ss := scrape.Parse(out.String())
			ok := 0
			for _, s := range ss {
				if s.Error == "" {
					ok++
					if s.Latency.Count != 1 || s.Pool != nil || s.CPUSeconds <= 0 {
						t.Errorf("sample %+v: want the one client request, no pool, the process's CPU", s)
					}
				}
			}
			if tt.wantLines >= 0 && (len(ss) != tt.wantLines || ok != tt.wantOK) {
				t.Errorf("%d lines, %d answered; want %d, %d:\n%s", len(ss), ok, tt.wantLines, tt.wantOK, out.String())
			}
			if tt.wantLines < 0 && ok == 0 {
				t.Errorf("no address answered:\n%s", out.String())
			}
		})
	}
}
