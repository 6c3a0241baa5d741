#!/bin/sh
# How a host worker runs, everywhere (scripts/stack.sh, scripts/stack-cluster.sh, docker-compose.yml,
# the README): the JavaScript `npm run build:js` writes under dist/js/, with the memory settings
# below. Measured with bench/dcu.ts (README, "DCU"): the host worker's RSS while it packages an
# image, and what it keeps from one packaging to the next.
#
# - Compiled JavaScript, not `node --import tsx`: tsx runs its loader in a thread of its own (a
#   second V8 heap), keeps every module's inline source map, starts esbuild processes, and the
#   compression thread registered it again: about 60 MB. Same transform (esbuild), done once ahead.
# - --max-semi-space-size=1 (MB): V8's young generation may grow to 3 x 16 MB; the main thread of a
#   host worker allocates little (the image's bytes go through the compression thread, and Buffers
#   live outside the heap), so a small one costs no measurable CPU.
# - jemalloc (Debian's libjemalloc2) when it is installed: the image's bytes pass through many
#   short-lived native allocations (socket reads, zlib's state on libuv's pool, the compression
#   thread's blocks); glibc's malloc kept what its arenas held at each packaging's peak (RSS grew
#   from one packaging to the next), jemalloc gives unused pages back within seconds. Without it,
#   glibc with MALLOC_ARENA_MAX=2 (fewer per-thread arenas to keep memory in).
# An LD_PRELOAD or MALLOC_ARENA_MAX already in the environment wins; node flags in NODE_OPTIONS
# come before these.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
main=$root/dist/js/workers/host.js
[ -f "$main" ] || { echo "host-worker.sh: no $main: run npm run build:js first" >&2; exit 1; }
if [ -z "${LD_PRELOAD:-}" ]; then
  for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2; do
    if [ -f "$lib" ]; then export LD_PRELOAD="$lib"; break; fi
  done
fi
# jemalloc hands freed pages back to the kernel after a second rather than its default ten, from a
# background thread (not only when the worker next allocates): what one packaging freed is gone
# before the next begins, so a worker that packages one image after another does not carry the last
# one's peak into the next (measured: 237 MB before a 1 GiB packaging that began within seconds of
# the previous one, 182 MB once idle).
export MALLOC_CONF="${MALLOC_CONF:-background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0}"
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node --max-semi-space-size=1 "$main"
