package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"
)

type ctxKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// A caller's X-Request-Id is kept when it looks like an ID, so one ID can
// follow a request across services; anything else is replaced.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives each request an ID (echoed in X-Request-Id), logs one
// line when it ends, and tells obs (when not nil) of it.
func logRequests(log *slog.Logger, obs Observer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if obs != nil {
			obs.Start()
		}
		id := r.Header.Get("X-Request-Id")
		if id == "" || !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		// The mux records the route pattern it chose in the request it is
		// given: this one.
		inner := r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
		next.ServeHTTP(sw, inner)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		took := time.Since(start)
		route := inner.Pattern
		if route == fallbackPattern {
			route = ""
		}
		if obs != nil {
			obs.Done(route, sw.status, took)
		}
		level := slog.LevelInfo
		probe := r.URL.Path == "/health" || r.URL.Path == "/ready"
		switch {
		case probe && sw.status < 400:
			// Probes arrive every few seconds from every orchestrator;
			// their successes are noise at info level.
			level = slog.LevelDebug
		case probe:
			level = slog.LevelWarn // not ready is a state, not a failure of this request
		case sw.status >= 500:
			level = slog.LevelError
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Int("bytes", sw.bytes),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.String("request_id", id),
		)
	})
}
