#!/usr/bin/env bash
# Packs a static binary into a FROM scratch image for the tests, with the
# host's CA bundle (Traefik talks TLS to an ACME server; pebble to nothing,
# but a bundle costs little) and, optionally, a directory copied to /.
# The rest of the Dockerfile (EXPOSE, HEALTHCHECK, ENTRYPOINT) comes on stdin.
#
#   .ci/scratchimage.sh IMAGE VERSION BINARY NAME [EXTRA_DIR] <dockerfile-tail
#
# The image is labelled with VERSION and the binary's digest and rebuilt only
# when either differs, so a rebuilt binary never hides behind an old image.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 IMAGE VERSION BINARY NAME [EXTRA_DIR] <dockerfile-tail" >&2; exit 2; }
image=$1 version=$2 bin=$3 name=$4 extra=${5:-}
tail=$(cat)

sum=$(sha256sum "$bin" | cut -d' ' -f1)
want="$version $sum"
have=$(docker image inspect "$image" --format '{{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Labels "service-template.binary-sha256"}}' 2>/dev/null || true)
if [ "$have" = "$want" ]; then
  echo "ci: $image already holds $name $version"
  exit 0
fi

ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca" ]; then
  echo "ci: installing ca-certificates from Debian (for $ca)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates >/dev/null
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/root/usr/local/bin" "$ctx/root/etc/ssl/certs"
cp "$bin" "$ctx/root/usr/local/bin/$name"
cp "$ca" "$ctx/root/etc/ssl/certs/ca-certificates.crt"
[ -z "$extra" ] || cp -R "$extra/." "$ctx/root/"
{
  echo "FROM scratch"
  echo "COPY root/ /"
  echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
  echo "LABEL org.opencontainers.image.version=\"$version\" service-template.binary-sha256=\"$sum\""
  echo "$tail"
} >"$ctx/Dockerfile"
# The classic builder is all the engine here has; it warns that it is deprecated.
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null 2>"$ctx/build.log" || { cat "$ctx/build.log"; exit 1; }
echo "ci: built $image ($name $version)"
