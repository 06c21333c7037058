package httpapi_test

import (
	"bufio"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// curlRequest is what one curl line of the README asks for.
type curlRequest struct {
	method, url, body string
	header            map[string]string
}

// parseCurl reads a curl line of the README: words split on blanks, with
// single quotes as the shell reads them, and the flags the README uses
// (-X, -H, -d).
func parseCurl(t *testing.T, line string) curlRequest {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("README: unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	req := curlRequest{method: "GET", header: map[string]string{}}
	for i := 1; i < len(words); i++ {
		arg := func() string {
			if i+1 >= len(words) {
				t.Fatalf("README: %s without a value in %q", words[i], line)
			}
			i++
			return words[i]
		}
		switch words[i] {
		case "-X":
			req.method = arg()
		case "-H":
			k, v, ok := strings.Cut(arg(), ":")
			if !ok {
				t.Fatalf("README: header %q is not Name: value in %q", words[i], line)
			}
			req.header[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case "-d":
			req.body = arg()
			if req.method == "GET" {
				req.method = "POST"
			}
		default:
			if strings.HasPrefix(words[i], "-") {
				t.Fatalf("README: curl flag %s is not known to this test (%q)", words[i], line)
			}
			req.url = words[i]
		}
	}
	return req
}

// The README's curl lines, sent as curl would send them, succeed: curl -d
// sends application/x-www-form-urlencoded unless told otherwise, and the
// service answers that with 415.
func TestReadmeCurlExamples(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "curl ") && strings.Contains(line, "localhost:8080/") {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("README.md: no curl line for localhost:8080 found; this test would check nothing")
	}
	h := newHandler(&memStore{}, readiness{}, io.Discard)
	for _, line := range lines {
		t.Run(line, func(t *testing.T) {
			c := parseCurl(t, line)
			req := httptest.NewRequest(c.method, "http://"+strings.TrimPrefix(c.url, "http://"), strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // curl's default for -d
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 400 {
				t.Errorf("README.md: %q answers %d: %s", line, rec.Code, rec.Body)
			}
		})
	}
}
