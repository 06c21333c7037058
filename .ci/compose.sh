#!/usr/bin/env bash
# Docker Compose v2 for the local-stack test (dev:up, dev:watch): not in
# Debian 12, so it is built from its Go module into the docker CLI's plugin
# directory. The cache is the binary itself: it is kept only when it exists
# and reports the pinned version; anything else (missing, another version, a
# half-written file) is rebuilt. A rebuild is fast when Go's build cache is warm.
#
#   .ci/compose.sh            install the pinned version unless it is there
#   COMPOSE_VERSION=v2.x.y    another version
set -euo pipefail

version=${COMPOSE_VERSION:-v2.40.3}
module=github.com/docker/compose/v2
plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
bin=$plugins/docker-compose

have=$("$bin" version --short 2>/dev/null || true)
if [ "$have" = "${version#v}" ]; then
  echo "ci: docker compose $have already built ($bin)"
  exit 0
fi
echo "ci: building docker compose $version from its Go module (found: ${have:-none}; a few minutes when Go's build cache is cold)"

start=$(date +%s)
dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "ci: go mod download $module@$version gave no module directory"; exit 1; }

# go install refuses a module with replace directives; building it as the
# main module from a writable copy honours them.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$dir/." "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$plugins"
(cd "$work/src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X $module/internal.Version=$version" -o "$work/docker-compose" ./cmd)
mv -f "$work/docker-compose" "$bin"

have=$("$bin" version --short)
[ "$have" = "${version#v}" ] || { echo "ci: built docker compose reports $have, want ${version#v}"; exit 1; }
echo "ci: docker compose $have built in $(( $(date +%s) - start ))s ($bin)"
