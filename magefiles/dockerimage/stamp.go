package dockerimage

import (
	"path"
	"strings"
	"time"

	"github.com/fractionate/service-template/magefiles/release"
)

// Stamp is what a build records about itself, in the binary (-ldflags -X)
// and in the image's OCI labels. It holds no clock reading: Created is the
// commit time, so rebuilding an unchanged tree gives the same image ID.
type Stamp struct {
	Version string    // org.opencontainers.image.version, buildinfo.Version
	Commit  string    // org.opencontainers.image.revision, buildinfo.Commit
	Created time.Time // org.opencontainers.image.created, buildinfo.Date
	Source  string    // org.opencontainers.image.source; the Dockerfile's default when empty
	Title   string    // org.opencontainers.image.title; the Dockerfile's default when empty
}

// CreatedString is Created in RFC 3339, UTC; empty for the zero time.
func (s Stamp) CreatedString() string {
	if s.Created.IsZero() {
		return ""
	}
	return s.Created.UTC().Format(time.RFC3339)
}

// BuildArgs are the Dockerfile's ARGs for s. Empty values are left out so
// that the Dockerfile's defaults apply.
func (s Stamp) BuildArgs() map[string]*string {
	args := map[string]*string{}
	for k, v := range map[string]string{
		"VERSION": s.Version,
		"COMMIT":  s.Commit,
		"CREATED": s.CreatedString(),
		"SOURCE":  s.Source,
		"TITLE":   s.Title,
	} {
		if v != "" {
			args[k] = &v
		}
	}
	return args
}

// VersionFromTags picks the version a build reports from the image tags the
// tag scheme gave it (magefiles/imagetag): the first release tag by
// release.IsReleaseTag, the one rule for what a release is (the scheme lists the
// highest first), else the first tag, which is the commit's own (abc1234,
// or abc1234-dirty). "dev" when there are no tags. A branch tag never
// passes: the scheme prefixes every version-shaped branch name.
func VersionFromTags(tags []string) string {
	for _, t := range tags {
		if release.IsReleaseTag(t) {
			return t
		}
	}
	if len(tags) > 0 {
		return tags[0]
	}
	return "dev"
}

// SourceURL is the repository's web address for the source label: from
// GitHub Actions' GITHUB_SERVER_URL and GITHUB_REPOSITORY when set, else from
// a github.com origin remote (credentials dropped), else "".
func SourceURL(githubServerURL, githubRepository, originURL string) string {
	if githubRepository != "" {
		server := strings.TrimSuffix(githubServerURL, "/")
		if server == "" {
			server = "https://github.com"
		}
		return server + "/" + githubRepository
	}
	if repo, _, ok := GitHubRepo(originURL); ok {
		return "https://github.com/" + repo
	}
	return ""
}

// TitleOf is the last element of an image repository: the title label.
func TitleOf(repository string) string { return path.Base(repository) }
