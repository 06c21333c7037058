#!/usr/bin/env bash
# Traefik v3 for the proxy stack's tests where no image can be pulled: the
# binary is built from its Go module (v3.6.x builds; v3.7.x does not, its zip
# lacks a module its go.mod replaces) and packed into a FROM scratch image.
# Real users run traefik:v3.6 from Docker Hub (deploy/proxy.yml pins it).
#
# The binary is cached OUTSIDE the checkout and reused only when it reports
# the pinned version (like .ci/compose.sh); the image is rebuilt when it is
# missing or labelled with another version.
#
#   .ci/traefik.sh [IMAGE]     default local/traefik:v3.6
#   TRAEFIK_VERSION=v3.6.x     another patch release
#   SERVICE_TEMPLATE_CACHE     cache directory (default $XDG_CACHE_HOME/service-template)
set -euo pipefail
cd "$(dirname "$0")"

version=${TRAEFIK_VERSION:-v3.6.12}
image=${1:-local/traefik:v3.6}
module=github.com/traefik/traefik/v3
cache=${SERVICE_TEMPLATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/service-template}
bin=$cache/traefik/traefik

reported() { "$bin" version 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p'; }

have=$(reported || true)
if [ "$have" = "$version" ]; then
  echo "ci: traefik $have already built ($bin)"
else
  echo "ci: building traefik $version from its Go module (found: ${have:-none}; ~15 min on 2 cores when Go's caches are cold)"
  start=$(date +%s)
  bash ./gomodbin.sh "$module" "$version" ./cmd/traefik "$bin" \
    "-X $module/pkg/version.Version=$version -X $module/pkg/version.Codename=ci -X $module/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  have=$(reported)
  [ "$have" = "$version" ] || { echo "ci: built traefik reports ${have:-nothing}, want $version"; exit 1; }
  echo "ci: traefik $have built in $(( $(date +%s) - start ))s ($bin)"
fi

bash ./scratchimage.sh "$image" "$version" "$bin" traefik <<'DOCKERFILE'
EXPOSE 80 443
# The same check deploy/proxy.yml declares; it reads the static
# configuration (TRAEFIK_* variables) the server was started with.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["traefik", "healthcheck", "--ping"]
ENTRYPOINT ["traefik"]
DOCKERFILE
