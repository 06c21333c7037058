package endpoint

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/fractionate/service-template/magefiles/deploy/envfile"
)

// Unreachable is what a change says when env's endpoint does not answer:
// one line naming the environment, the endpoint, the cause and what to do,
// instead of the client's own wall of text (which names the placeholder
// host Docker's ssh helper dials, docker.example.com).
func Unreachable(env string, ep Endpoint, err error) error {
	fix := fmt.Sprintf("edit endpoint: of %s in %s, or set DEPLOY_HOST", env, envfile.DefaultPath)
	if ep.Local() {
		fix = "start the Docker engine, or point DOCKER_HOST (or the environment's endpoint:) at one"
	}
	return fmt.Errorf("environment %s: %s does not answer: %s; %s", env, ep, Cause(err), fix)
}

// Cause is the short reason a connection failed.
func Cause(err error) string {
	if err == nil {
		return "no error"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", ResponseTimeout)
	}
	msg := err.Error()
	// The ssh helper's error ends with ssh's own message.
	if _, stderr, ok := strings.Cut(msg, "stderr="); ok {
		stderr = strings.Trim(strings.TrimSpace(stderr), `"`)
		lines := strings.Split(strings.ReplaceAll(stderr, `\n`, "\n"), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if l := strings.TrimSpace(lines[i]); l != "" {
				return l
			}
		}
		return "the ssh command failed with no message (is docker installed on the host?)"
	}
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("host %s not found", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.Is(err, syscall.EACCES), strings.Contains(msg, "permission denied"):
		return "permission denied (is this user allowed to use the socket?)"
	case errors.Is(err, syscall.ETIMEDOUT), isTimeout(err):
		return "timed out"
	case errors.As(err, &unknownCA):
		return "TLS: the engine's certificate is not signed by the CA given (DEPLOY_TLS_CA)"
	case errors.As(err, &hostname):
		return "TLS: " + hostname.Error()
	case strings.HasPrefix(msg, "Cannot connect to the Docker daemon"):
		// The client drops the dial error for refusals and timeouts.
		return "connection refused or timed out"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "the engine speaks plain HTTP, not TLS"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	msg = strings.ReplaceAll(msg, "http://docker.example.com", "")
	msg, _, _ = strings.Cut(msg, "\n")
	return strings.TrimSpace(strings.TrimPrefix(msg, "error during connect:"))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
