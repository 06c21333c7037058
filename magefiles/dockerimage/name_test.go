package dockerimage

import (
	"strings"
	"testing"
)

func TestImageName(t *testing.T) {
	tests := []struct {
		name                                string
		registry, imageName, ghRepo, origin string
		want                                string
		wantErr                             string
	}{
		{name: "IMAGE_NAME wins", imageName: "acme/api", ghRepo: "other/repo", origin: "git@github.com:x/y.git", want: "ghcr.io/acme/api"},
		{name: "GITHUB_REPOSITORY", ghRepo: "Fractionate/Service-Template", want: "ghcr.io/fractionate/service-template"},
		{name: "origin https", origin: "https://github.com/Fractionate/Neon.git", want: "ghcr.io/fractionate/neon"},
		{name: "origin ssh scp-like", origin: "git@github.com:fractionate/neon.git", want: "ghcr.io/fractionate/neon"},
		{name: "origin ssh url with port", origin: "ssh://git@github.com:22/fractionate/neon", want: "ghcr.io/fractionate/neon"},
		{name: "registry override", registry: "127.0.0.1:5000", imageName: "acme/api", want: "127.0.0.1:5000/acme/api"},
		{name: "registry lower-cased", registry: "GHCR.io", imageName: "Acme/API", want: "ghcr.io/acme/api"},
		{name: "nested name", imageName: "acme/team/api", want: "ghcr.io/acme/team/api"},
		{name: "nothing", wantErr: "set IMAGE_NAME"},
		{name: "origin elsewhere", origin: "https://gitlab.com/acme/api.git", wantErr: "gitlab.com, not github.com; set IMAGE_NAME"},
		{name: "origin not a URL", origin: "/srv/git/api.git", wantErr: "set IMAGE_NAME"},
		{name: "origin with a token is not quoted", origin: "https://user:s3cr3t-token@gitlab.com/a/b.git", wantErr: "set IMAGE_NAME"},
		{name: "tag in IMAGE_NAME", imageName: "acme/api:v1", wantErr: "tag or digest"},
		{name: "invalid characters", imageName: "acme/a pi", wantErr: "IMAGE_NAME"},
		{name: "registry with scheme", registry: "https://ghcr.io", imageName: "a/b", wantErr: "no scheme or path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ImageName(tt.registry, tt.imageName, tt.ghRepo, tt.origin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ImageName() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("error quotes the remote's credentials: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ImageName() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestGitHubRepo(t *testing.T) {
	tests := []struct {
		remote, want string
		ok           bool
	}{
		{"https://github.com/owner/repo", "owner/repo", true},
		{"https://github.com/owner/repo.git", "owner/repo", true},
		{"https://github.com/owner/repo/", "owner/repo", true},
		{"https://x-access-token:ghs_abc@github.com/owner/repo.git", "owner/repo", true},
		{"http://GitHub.com/owner/repo", "owner/repo", true},
		{"git@github.com:owner/repo.git", "owner/repo", true},
		{"github.com:owner/repo", "owner/repo", true},
		{"ssh://git@github.com/owner/repo.git", "owner/repo", true},
		{"ssh://git@github.com:22/owner/repo.git", "owner/repo", true},
		{"git://github.com/owner/repo.git", "owner/repo", true},
		{"https://github.com/owner", "", false},
		{"https://github.com/owner/repo/extra", "", false},
		{"https://gitlab.com/owner/repo.git", "", false},
		{"git@gitlab.com:owner/repo.git", "", false},
		{"https://github.com.evil.example/owner/repo", "", false},
		{"/local/path/repo.git", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, _, ok := GitHubRepo(tt.remote)
		if got != tt.want || ok != tt.ok {
			t.Errorf("GitHubRepo(%q) = %q, %v; want %q, %v", tt.remote, got, ok, tt.want, tt.ok)
		}
	}
}
