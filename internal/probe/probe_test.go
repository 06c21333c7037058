package probe

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			_, _ = w.Write([]byte(`{"version":"v1"}` + "\n"))
		case "/moved":
			http.Redirect(w, r, "/version", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready"))
		}
	}))
	defer srv.Close()
	get := func(path, addr string) Result {
		u, err := url.Parse(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		return Get(t.Context(), u, addr)
	}
	if r := get("/version", ""); !r.OK() || string(r.Body) != `{"version":"v1"}` || r.Address != "" {
		t.Errorf("JSON body: %+v", r)
	}
	if r := get("/ready", ""); r.OK() || r.Status != 503 || r.Text != "not ready" {
		t.Errorf("a 503: %+v", r)
	}
	if r := get("/moved", ""); r.Status != http.StatusFound {
		t.Errorf("a redirect was followed: %+v", r)
	}
	if r := get("/version", "127.0.0.1"); !r.OK() || !strings.HasPrefix(r.Address, "127.0.0.1:") {
		t.Errorf("asked at an address: %+v", r)
	}
}

// Parse and the encoder agree: what app probe prints, the deploy reads.
func TestParseReadsWhatIsPrinted(t *testing.T) {
	want := []Result{{URL: "http://tasks.app:8080/ready", Address: "10.0.1.5:8080", Status: 200, Body: json.RawMessage(`{"status":"ok"}`)},
		{URL: "http://tasks.app:8080/version", Error: "connection refused"}}
	var b strings.Builder
	b.WriteString("a log line\n")
	enc := json.NewEncoder(&b)
	for _, r := range want {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	b.WriteString(`{"not":"a result"}` + "\n")
	got := Parse(b.String())
	if len(got) != 2 || got[0].URL != want[0].URL || string(got[0].Body) != string(want[0].Body) || got[1].Error != want[1].Error {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
}
