#!/bin/bash
# Builds local stand-ins for postgres:16-alpine, redis:7-alpine and golang:1.26
# from Debian's packages (and, for Go, the host's own toolchain): CI machines
# cannot pull any image. Each image is built only when the engine does not have
# it already.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage="usage: build-local-images.sh POSTGRES_IMAGE REDIS_IMAGE GOLANG_IMAGE"
pg_image=${1:?$usage}
redis_image=${2:?$usage}
golang_image=${3:?$usage}

have() { docker image inspect "$1" >/dev/null 2>&1; }
# The Go stand-in must carry the host's Go release (the tests compare the
# binaries it builds with the host's): an older one is rebuilt.
host_go=$(go env GOVERSION | sed 's/^go//')
if have "$golang_image" &&
  ! docker image inspect "$golang_image" --format '{{range .Config.Env}}{{println .}}{{end}}' |
    grep -qx "GOLANG_VERSION=$host_go"; then
  echo "ci: $golang_image does not carry Go $host_go; rebuilding it"
  docker rmi "$golang_image" >/dev/null
fi
if have "$pg_image" && have "$redis_image" && have "$golang_image"; then
  echo "ci: local images $pg_image, $redis_image and $golang_image present"
  exit 0
fi

command -v debootstrap >/dev/null || {
  echo "ci: installing debootstrap"
  # A fresh machine has no package lists: install alone would not find it.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

rootfs=$(mktemp -d /var/tmp/ci-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "ci: debootstrap bookworm with postgresql-15 and redis-server (about 2 minutes)"
debootstrap --variant=minbase --include=postgresql-15,redis-server,ca-certificates bookworm "$rootfs" \
  >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/*
install -m 0755 "$here/postgres-entrypoint.sh" "$rootfs/usr/local/bin/docker-entrypoint.sh"

if ! have "$pg_image"; then
  echo "ci: importing $pg_image"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' -c 'CMD ["postgres"]' \
    -c 'EXPOSE 5432' -c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$pg_image" >/dev/null
fi
if ! have "$redis_image"; then
  echo "ci: importing $redis_image"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENTRYPOINT ["redis-server","--bind","0.0.0.0","--protected-mode","no","--save",""]' \
    -c 'EXPOSE 6379' - "$redis_image" >/dev/null
fi
if ! have "$golang_image"; then
  # The Dockerfile's builder stage only needs `go` on PATH and CA roots for
  # the module proxy: the host's toolchain (the version CI tests with) on the
  # same Debian root filesystem stands in for the official image. The host's
  # CA bundle goes in too: this network reaches the proxy through a TLS
  # proxy whose root only the host trusts.
  goroot=$(go env GOROOT)
  echo "ci: importing $golang_image (Go from $goroot: $(go env GOVERSION))"
  mkdir -p "$rootfs/usr/local/go"
  cp -aL "$goroot/." "$rootfs/usr/local/go/" # -L: Debian's Go links into /usr/share
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "ENV GOLANG_VERSION=$host_go" \
    -c 'ENV GOPATH=/go' -c 'ENV GOTOOLCHAIN=local' -c 'WORKDIR /go' \
    - "$golang_image" >/dev/null
fi
