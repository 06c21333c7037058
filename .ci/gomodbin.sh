#!/usr/bin/env bash
# Builds one command of a Go module that `go install` refuses (replace
# directives) by making a writable copy of the downloaded module the main
# module. Used by .ci/traefik.sh and .ci/pebble.sh; the callers decide whether
# a build is needed (their cache check) and check the result.
#
#   .ci/gomodbin.sh MODULE VERSION PACKAGE OUTPUT [LDFLAGS]
#
# The build runs under nice so that a long cold build (Traefik: ~15 min on
# 2 cores) leaves the machine usable; OUTPUT is replaced only once the build
# succeeded, so an interrupted build never leaves a half-written binary.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 MODULE VERSION PACKAGE OUTPUT [LDFLAGS]" >&2; exit 2; }
module=$1 version=$2 pkg=$3 out=$4 ldflags=${5:-}

dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "ci: go mod download $module@$version gave no module directory" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$dir/." "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$(dirname "$out")"
(cd "$work/src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 19 go build -trimpath \
  -ldflags "-s -w $ldflags" -o "$work/bin" "$pkg")
# Copied next to OUTPUT first: mv within one directory is atomic.
cp "$work/bin" "$out.partial"
mv -f "$out.partial" "$out"
