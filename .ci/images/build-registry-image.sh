#!/bin/bash
# Builds a stand-in for registry:2 (what deploy:init starts for the local
# environment) where it cannot be pulled: the CNCF registry itself
# (distribution/distribution, the program registry:2 runs) compiled from its
# Go module into a FROM scratch image. Skipped when the image is there.
set -euo pipefail
usage="usage: build-registry-image.sh IMAGE"
image=${1:?$usage}
version=v3.1.2

if docker image inspect "$image" --format '{{index .Config.Labels "org.opencontainers.image.version"}}' 2>/dev/null | grep -qx "$version"; then
  echo "ci: $image (distribution $version) present"
  exit 0
fi
dir=$(mktemp -d /var/tmp/ci-registry.XXXXXX)
trap 'rm -rf "$dir" "$dir.log"' EXIT
echo "ci: building the CNCF registry $version for $image (about 2 minutes cold)"
CGO_ENABLED=0 GOBIN="$dir" go install -trimpath -ldflags=-s "github.com/distribution/distribution/v3/cmd/registry@$version"
mkdir -p "$dir/var/lib/registry" "$dir/tmp"
cat >"$dir/config.yml" <<'YAML'
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
YAML
cat >"$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY registry /bin/registry
COPY config.yml /etc/docker/registry/config.yml
COPY var /var
COPY tmp /tmp
LABEL org.opencontainers.image.version="$version" org.opencontainers.image.title="distribution registry (CI stand-in for registry:2)"
EXPOSE 5000
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
DOCKERFILE
# Quiet unless it fails; then the end of the build's output says why. The
# log is beside the build context, not in it.
DOCKER_BUILDKIT=0 docker build -t "$image" "$dir" >"$dir.log" 2>&1 ||
  { echo "ci: building $image failed:" >&2; tail -40 "$dir.log" >&2; exit 1; }
echo "ci: built $image"
