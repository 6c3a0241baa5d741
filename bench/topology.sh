#!/usr/bin/env bash
# Benchmark: pull and container-start latency on the cluster mode beside the development
# stack, in one run: the same benches (bench/pull.ts, bench/containers.ts) on host-a of the
# development stack (Temporal's dev server, plain gRPC), then on host-a of the cluster (two
# Temporal nodes on PostgreSQL behind haproxy, mTLS) and, for pulls, on host-c (a Docker host
# in a network namespace, driven over TCP with mutual TLS, reaching Temporal, PostgreSQL and
# the registry through the gateway address).
#
#   bash bench/topology.sh [pull runs=20] [container runs=15]
#
# It switches the stack's mode twice (`stack.sh up`, `stack.sh up:cluster`, then `up` again):
# nothing else may use the stack meanwhile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PULL_RUNS=${1:-20}
CONTAINER_RUNS=${2:-15}
settings=$(mktemp)
trap 'rm -f "$settings"' EXIT

bench() { # MODE: runs the benches against the stack's current settings
  bash scripts/stack.sh env >"$settings"
  (
    set -a
    # shellcheck disable=SC1090
    . "$settings"
    set +a
    echo "=== $1: pull on host-a"
    node --import tsx bench/pull.ts "$PULL_RUNS" host-a
    if [[ $1 == cluster ]]; then
      echo "=== $1: pull on host-c"
      node --import tsx bench/pull.ts "$PULL_RUNS" host-c
    fi
    echo "=== $1: container start on host-a"
    node --import tsx bench/containers.ts "$CONTAINER_RUNS" host-a
  )
}

bash scripts/stack.sh up >/dev/null
bench development
bash scripts/stack.sh up:cluster >/dev/null
bench cluster
bash scripts/stack.sh up >/dev/null
