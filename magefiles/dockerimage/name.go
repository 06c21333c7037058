package dockerimage

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/distribution/reference"
)

// DefaultRegistry is where images go unless REGISTRY says otherwise.
const DefaultRegistry = "ghcr.io"

// ImageName returns the image repository, REGISTRY/IMAGE_NAME, lower-cased
// (GHCR refuses upper case). Each argument is optional:
//
//	registry          REGISTRY; DefaultRegistry when empty
//	imageName         IMAGE_NAME, e.g. "fractionate/service-template"; wins when set
//	githubRepository  GITHUB_REPOSITORY ("owner/repo", set by GitHub Actions); next
//	originURL         `git remote get-url origin`; used when it is a github.com URL
//
// When none of the last three gives a name, the error asks for IMAGE_NAME.
// Errors never quote originURL, which may hold a token.
func ImageName(registry, imageName, githubRepository, originURL string) (string, error) {
	registry = strings.TrimSpace(registry)
	if registry == "" {
		registry = DefaultRegistry
	}
	if strings.Contains(registry, "/") {
		return "", fmt.Errorf("REGISTRY %q: want a host with an optional port (like ghcr.io or 127.0.0.1:5000), no scheme or path", registry)
	}
	name, from := strings.TrimSpace(imageName), "IMAGE_NAME"
	if name == "" && strings.TrimSpace(githubRepository) != "" {
		name, from = strings.TrimSpace(githubRepository), "GITHUB_REPOSITORY"
	}
	if name == "" && originURL != "" {
		repo, host, ok := GitHubRepo(originURL)
		if !ok {
			what := "is not a GitHub URL"
			if host != "" {
				what = "is on " + host + ", not github.com"
			}
			return "", fmt.Errorf("cannot tell the image name: the origin remote %s; set IMAGE_NAME (like owner/repo)", what)
		}
		name, from = repo, "the origin remote"
	}
	if name == "" {
		return "", fmt.Errorf("cannot tell the image name: set IMAGE_NAME (like owner/repo); GITHUB_REPOSITORY is not set and there is no origin remote")
	}
	full := strings.ToLower(registry + "/" + strings.Trim(name, "/"))
	ref, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return "", fmt.Errorf("image name %q (from %s): %w", full, from, err)
	}
	if !reference.IsNameOnly(ref) {
		return "", fmt.Errorf("image name %q (from %s) carries a tag or digest; give the repository only", full, from)
	}
	if reference.Domain(ref) != strings.ToLower(registry) {
		return "", fmt.Errorf("image name %q (from %s) does not start with the registry %s", full, from, registry)
	}
	return full, nil
}

// GitHubRepo returns "owner/repo" from a github.com remote URL in any of the
// forms git accepts: https://github.com/owner/repo(.git), with or without
// credentials; git@github.com:owner/repo.git; ssh://git@github.com[:22]/owner/repo.
// host is the URL's host, for messages, when it could be read.
func GitHubRepo(remote string) (repo, host string, ok bool) {
	remote = strings.TrimSpace(remote)
	var path string
	if u, err := url.Parse(remote); err == nil && u.Scheme != "" && u.Host != "" {
		host, path = u.Hostname(), u.Path
	} else if at, rest, found := strings.Cut(remote, ":"); found && !strings.Contains(at, "/") {
		// scp-like syntax: [user@]host:path
		if _, h, hasUser := strings.Cut(at, "@"); hasUser {
			at = h
		}
		host, path = at, rest
	} else {
		return "", "", false
	}
	host = strings.ToLower(host)
	if host != "github.com" {
		return "", host, false
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	owner, name, found := strings.Cut(path, "/")
	if !found || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", host, false
	}
	return owner + "/" + name, host, true
}

// Refs returns repository:tag for every tag.
func Refs(repository string, tags []string) []string {
	refs := make([]string, len(tags))
	for i, t := range tags {
		refs[i] = repository + ":" + t
	}
	return refs
}
