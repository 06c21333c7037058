#!/usr/bin/env bash
# pebble, Let's Encrypt's small ACME test server, for the proxy tests: they
# get real certificates from it for made-up host names, never from the
# internet. Built from its Go module (github.com/letsencrypt/pebble/v2) and
# packed FROM scratch with the module's test/ directory (its sample config
# and the certificate of its HTTPS listener), as upstream's image has it.
# Used only in tests; nothing deployed runs it.
#
# The binary is cached outside the checkout and reused only when it reports
# the pinned version, like .ci/traefik.sh.
#
#   .ci/pebble.sh [IMAGE]      default local/pebble
#   PEBBLE_VERSION=v2.10.x     another release
#   SERVICE_TEMPLATE_CACHE     cache directory (default $XDG_CACHE_HOME/service-template)
set -euo pipefail
cd "$(dirname "$0")"

version=${PEBBLE_VERSION:-v2.10.3}
image=${1:-local/pebble}
module=github.com/letsencrypt/pebble/v2
cache=${SERVICE_TEMPLATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/service-template}
bin=$cache/pebble/pebble

reported() { "$bin" -version 2>/dev/null | sed -n 's/^Pebble version:[[:space:]]*//p'; }

have=$(reported || true)
if [ "$have" = "$version" ]; then
  echo "ci: pebble $have already built ($bin)"
else
  echo "ci: building pebble $version from its Go module (found: ${have:-none})"
  start=$(date +%s)
  bash ./gomodbin.sh "$module" "$version" ./cmd/pebble "$bin" "-X main.version=$version"
  have=$(reported)
  [ "$have" = "$version" ] || { echo "ci: built pebble reports ${have:-nothing}, want $version"; exit 1; }
  echo "ci: pebble $have built in $(( $(date +%s) - start ))s ($bin)"
fi

dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
cp -R "$dir/test" "$extra/test"
chmod -R u+w "$extra"
bash ./scratchimage.sh "$image" "$version" "$bin" pebble "$extra" <<'DOCKERFILE'
# 14000: the ACME directory (HTTPS, test/certs/localhost); 15000: the
# management interface (/roots/0 gives the root that signs what it issues).
EXPOSE 14000 15000
ENTRYPOINT ["pebble"]
CMD ["-config", "/test/config/pebble-config.json"]
DOCKERFILE
