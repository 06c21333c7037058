package template

import (
	"strconv"
	"strings"
	"testing"
)

func TestDefaultName(t *testing.T) {
	tests := []struct{ module, want string }{
		{"example.com/acme/billing", "billing"},
		{"example.com/acme/billing/v2", "billing"},
		{"github.com/Acme/Billing_API", "billing-api"},
		{"example.com/acme/billing.svc", "billing-svc"},
		{"gopkg.in/acme/billing.v3", "billing"},
	}
	for _, tt := range tests {
		if got := DefaultName(tt.module); got != tt.want {
			t.Errorf("DefaultName(%q) = %q, want %q", tt.module, got, tt.want)
		}
	}
}

// checkErr fails t unless err is nil when want is "", or contains want.
func checkErr(t *testing.T, call string, err error, want string) {
	t.Helper()
	if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
		t.Errorf("%s = %v, want error containing %q", call, err, want)
	}
}

func TestCheckModule(t *testing.T) {
	tests := []struct {
		module  string
		wantErr string // "" when valid
	}{
		{module: "example.com/acme/billing"},
		{module: "github.com/acme/billing/v2"},
		{module: "", wantErr: "empty string"},
		{module: "billing", wantErr: "missing dot in first path element"},
		{module: "example.com/acme/billing/", wantErr: "trailing slash"},
		{module: "example.com//billing", wantErr: "double slash"},
		{module: "example.com/acme/bill ing", wantErr: "invalid char ' '"},
		{module: "-example.com/acme", wantErr: "leading dash"},
	}
	for _, tt := range tests {
		checkErr(t, "CheckModule("+strconv.Quote(tt.module)+")", CheckModule(tt.module), tt.wantErr)
	}
}

func TestNameLimitsComeFromWhatTheNameBecomes(t *testing.T) {
	tests := []struct {
		name            string
		suffix          int
		service, secret string
		want            int
		wantReason      string
	}{
		// This template: stacks add "-staging", the stack files have
		// postgres and postgres_password: 64-8-1-17-6.
		{name: "this template", suffix: 8, service: "postgres", secret: "postgres_password", want: 32, wantReason: "<stack>_postgres_password_v<N>"},
		{name: "no secrets: the service name binds", suffix: 8, service: "a-rather-long-service-name", want: 63 - 8 - 1 - 26, wantReason: "<stack>_a-rather-long-service-name"},
		{name: "short everything: the stack rule binds", suffix: 8, service: "app", secret: "db", want: 40, wantReason: "stack name has at most 48"},
		{name: "nothing known", want: 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := NameLimits(tt.suffix, tt.service, tt.secret)
			if lim.Max != tt.want || !strings.Contains(lim.Reason, tt.wantReason) {
				t.Errorf("NameLimits = %+v, want max %d and a reason with %q", lim, tt.want, tt.wantReason)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	lim := NameLimits(8, "postgres", "postgres_password")
	tests := []struct {
		name    string
		wantErr string
	}{
		{name: "billing"},
		{name: "b"},
		{name: "billing-api-2"},
		{name: strings.Repeat("a", 32)},
		{name: strings.Repeat("a", 33), wantErr: "33 characters, at most 32: the deploy names secret versions <stack>_postgres_password_v<N>"},
		{name: "", wantErr: "empty"},
		{name: "Billing", wantErr: "lower-case letters"},
		{name: "2fa", wantErr: "starting with a letter"},
		{name: "billing-", wantErr: "not ending with '-'"},
		{name: "billing_api", wantErr: "lower-case letters, digits and '-'"},
		{name: "billing.api", wantErr: "lower-case letters, digits and '-'"},
	}
	for _, tt := range tests {
		checkErr(t, "CheckName("+strconv.Quote(tt.name)+")", CheckName(tt.name, lim), tt.wantErr)
	}
}

func TestCheckRegistry(t *testing.T) {
	tests := []struct {
		registry string
		wantErr  string
	}{
		{registry: "ghcr.io/acme"},
		{registry: "registry.example.com:5000"},
		{registry: "localhost/acme/team"},
		{registry: "127.0.0.1:5000"},
		{registry: "", wantErr: "empty"},
		{registry: "acme", wantErr: "must start with the registry's host"},
		{registry: "GHCR.io/acme", wantErr: "lower case"},
		{registry: "ghcr.io/acme:v1", wantErr: "registry host and an optional path"},
		{registry: "https://ghcr.io/acme", wantErr: "registry host and an optional path"},
	}
	for _, tt := range tests {
		checkErr(t, "CheckRegistry("+strconv.Quote(tt.registry)+")", CheckRegistry(tt.registry, "billing"), tt.wantErr)
	}
}

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		endpoint string
		wantErr  string
	}{
		{endpoint: "ssh://deploy@10.1.2.3"},
		{endpoint: "tcp://10.1.2.3:2376"},
		{endpoint: "unix:///var/run/docker.sock"},
		{endpoint: "deploy@10.1.2.3", wantErr: "want ssh://user@host"},
		{endpoint: "ssh://", wantErr: "want ssh://user@host"},
		{endpoint: "http://10.1.2.3", wantErr: "want ssh://user@host"},
		{endpoint: "ssh://deploy@host # comment", wantErr: "no spaces"},
	}
	for _, tt := range tests {
		checkErr(t, "CheckEndpoint("+strconv.Quote(tt.endpoint)+")", CheckEndpoint("-staginghost", tt.endpoint), tt.wantErr)
	}
}
