#!/usr/bin/env bash
# What a killed earlier run left on this machine's engine (.ci/run calls it
# while it holds the tests' lock, so no live run owns anything here).
#   sweep  when the engine is in a Swarm whose services all belong to the
#          tests' stacks (the end-to-end suite's e2e*, the production
#          stack's stacktest*, the proxy's proxytest-*), leaves that Swarm;
#          then removes the tests' containers (those and dockerimage-test-*)
#          and volumes. A Swarm holding anything else is refused, untouched.
# A machine stopped mid-run keeps its Swarm in the engine's data root, and
# the end-to-end tests refuse an engine already in a Swarm.
set -euo pipefail

ours='^(e2e|stacktest|proxytest-)'

case "${1:-}" in
sweep)
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != inactive ]; then
    others=$(docker service ls --format '{{.Name}}' | grep -Ev "$ours" || true)
    if [ -n "$others" ]; then
      echo "ci: the engine is in a Swarm ($state) that runs services no test made:" >&2
      echo "$others" | sed 's/^/  /' >&2
      echo "ci: the end-to-end tests need an engine outside any Swarm; run CI on an engine of its own" >&2
      exit 1
    fi
    echo "ci: leaving the Swarm ($state) an earlier, killed run left behind"
    docker service ls -q | xargs -r docker service rm >/dev/null
    docker swarm leave --force >/dev/null
  fi
  docker ps -a --format '{{.Names}}' | grep -E "$ours|^dockerimage-test-" | xargs -r docker rm -f -v >/dev/null || true
  docker volume ls -q | grep -E "$ours" | xargs -r docker volume rm -f >/dev/null || true
  ;;
*)
  echo "usage: $0 sweep" >&2
  exit 2
  ;;
esac
