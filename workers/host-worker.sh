#!/bin/sh
# How a host worker runs, everywhere (scripts/stack.sh, scripts/stack-cluster.sh, docker-compose.yml,
# the README): the JavaScript `npm run build:js` writes under dist/js/, with the memory settings
# below. Measured with bench/dcu.ts (README, "DCU"): its peak RSS while it packages a 1 GiB image.
#
# - Compiled JavaScript, not `node --import tsx`: tsx runs its loader in a thread of its own (a
#   second V8 heap), keeps every module's inline source map, and starts esbuild processes; the
#   compression thread would register it again. Same transform (esbuild), done once ahead.
# - --max-semi-space-size: V8's young generation grows to 3 x 16 MB by default; the main thread
#   of a host worker allocates little (the image's bytes go through the compression thread and
#   Buffers outside the heap), so a small one costs no measurable CPU.
# - MALLOC_ARENA_MAX: glibc gives each thread that allocates (libuv's pool, where zlib runs; the
#   compression thread; Temporal's Core) an arena of its own, and keeps what each held at its
#   peak: memory grew from one packaging to the next.
# MALLOC_ARENA_MAX already in the environment wins; node flags in NODE_OPTIONS come before these.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
main=$root/dist/js/workers/host.js
[ -f "$main" ] || { echo "host-worker.sh: no $main: run npm run build:js first" >&2; exit 1; }
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node --max-semi-space-size=1 "$main"
