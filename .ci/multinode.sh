#!/usr/bin/env bash
# The multi-node test bed's hook for .ci/run (internal/swarmtest names
# everything it makes swt-<bed>, and keeps files in /tmp/swarmtest):
#   sweep  removes what beds of runs that are gone left behind (a test
#          binary killed with SIGKILL or timed out);
#   state  lists, one per line, every trace of a bed on this machine:
#          network namespaces, links, cgroups, processes, mounts, files.
# Beds whose lock a live run holds are left out of both: another run's
# bed is not this run's leftover.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/swarmtest

live() { # bed number -> true when a running test binary owns the bed
  local lock="$dir/swt-$1.lock"
  [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null
}

traces() { # "kind name" lines, every trace of any bed
  ip netns list 2>/dev/null | awk '$1 ~ /^swt-/ {print "netns " $1}'
  ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^swt-/ {sub(/@.*/, "", $2); print "link " $2}'
  find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name 'swt-*' 2>/dev/null | sed 's/^/cgroup /'
  for p in /proc/[0-9]*; do
    # Nodes' engines, containerd, shims and holders run in a cgroup
    # /swt-<bed>-n<i>/..., containers below it too.
    grep -qs '^State:.*Z' "$p/status" && continue # a zombie holds nothing but its number
    if grep -qs ':/swt-' "$p/cgroup"; then
      echo "process ${p#/proc/} $(cat "$p/comm" 2>/dev/null) $(grep -o ':/swt-[0-9]*' "$p/cgroup" | head -1 | cut -c3-)"
    fi
  done
  awk '$5 ~ /(^|\/)swt-|^\/tmp\/swarmtest(\/|$)/ {print "mount " $5}' /proc/self/mountinfo
  [ -d "$dir" ] && find "$dir" -mindepth 1 -maxdepth 1 | sed 's/^/file /'
  true
}

case "${1:-}" in
sweep)
  go run ./internal/swarmtest/cmd/swarmtest-sweep
  ;;
state)
  traces | while read -r line; do
    bed=$(grep -o 'swt-[0-9]*' <<<"$line" | head -1 | cut -c5-)
    if [ -n "$bed" ] && live "$bed"; then continue; fi
    # A process's number changes from run to run; its name and bed do not.
    case "$line" in process\ *) line="process $(cut -d' ' -f3- <<<"$line")" ;; esac
    echo "$line"
  done | sort -u
  ;;
*)
  echo "usage: $0 sweep|state" >&2
  exit 2
  ;;
esac
