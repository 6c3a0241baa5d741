#!/usr/bin/env bash
# npm test: bring up whatever of the stack is not running, then type-check, lint, check the
# migrations against the schema, and run the unit and integration tests on the real stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
. "${BERTH_STATE_DIR:-$HOME/.local/state/berth}/berth.env"
set +a
echo "[test] type-check" && npx tsc --noEmit
echo "[test] lint" && npx eslint .
echo "[test] migrations match the schema" && bash scripts/check-migrations.sh
# Two passes. First every test file but those under test/integration/serial/, several files at
# a time (each in a process of its own; the tests of one file run in order): these tests make
# their own users, images, containers and tasks, and look only at those. Larger files first, so
# that the long ones do not start last. Then, one file at a time, the tests that act on or count
# everything on the stack (stopping MinIO or a host worker, the host workers' stream counts,
# which host a pull goes to, the sweep of unused networks, the DCU cleanup schedules), the
# nightly release last. BERTH_TEST_CONCURRENCY sets the first pass's files at once (default 6:
# measured on a 2-core machine, 6 and 8 took about 3 minutes, 4 about a minute more).
mapfile -t concurrent < <(find test -name '*.test.ts' -not -path 'test/integration/serial/*' -printf '%s %p\n' | sort -rn | cut -d' ' -f2-)
mapfile -t serial < <(find test/integration/serial -name '*.test.ts' -not -name release.test.ts | sort)
serial+=(test/integration/serial/release.test.ts)
jobs=${BERTH_TEST_CONCURRENCY:-6}
echo "[test] ${#concurrent[@]} files, $jobs at a time"
node --import tsx --test --test-concurrency="$jobs" --test-reporter=spec "${concurrent[@]}"
echo "[test] ${#serial[@]} files that act on the whole stack, one at a time"
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${serial[@]}"
