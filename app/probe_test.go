package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fractionate/service-template/internal/probe"
)

// TestProbe: one JSON line per request, JSON bodies kept as JSON, and an
// error unless every answer is 2xx.
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"version":"v1.2.3","host":"` + r.Host + `"}` + "\n"))
		case "/ready":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name      string
		args      []string
		wantErr   string
		wantLines []probe.Result
	}{
		{"json body", []string{srv.URL + "/version"}, "",
			[]probe.Result{{URL: srv.URL + "/version", Status: 200, Body: json.RawMessage(`{"version":"v1.2.3","host":"` + host + `"}`)}}},
		{"a 503 fails the probe, every URL is still asked", []string{srv.URL + "/ready", srv.URL + "/version"}, "1 of 2 requests",
			[]probe.Result{
				{URL: srv.URL + "/ready", Status: 503, Text: "not ready"},
				{URL: srv.URL + "/version", Status: 200, Body: json.RawMessage(`{"version":"v1.2.3","host":"` + host + `"}`)},
			}},
		{"-all asks each address, keeping the Host", []string{"-all", srv.URL + "/version"}, "",
			[]probe.Result{{URL: srv.URL + "/version", Address: host, Status: 200, Body: json.RawMessage(`{"version":"v1.2.3","host":"` + host + `"}`)}}},
		{"nothing listening", []string{"http://127.0.0.1:1/ready"}, "1 of 1", nil},
		{"not a URL", []string{"tasks.app:8080/ready"}, "is not an http:// or https:// URL", nil},
		{"no URL", []string{"-all"}, "at least one", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := probeCommand(t.Context(), tt.args, &out)
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("probe = %v, want error %q\n%s", err, tt.wantErr, out.String())
			}
			if tt.wantLines == nil {
				return
			}
			var got []probe.Result
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var r probe.Result
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				got = append(got, r)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(tt.wantLines)
			if !bytes.Equal(a, b) {
				t.Errorf("lines\n%s\nwant\n%s", a, b)
			}
		})
	}
}
