#!/usr/bin/env bash
# npm test: bring up whatever of the stack is not running, then run the unit and integration
# tests on the real stack, and type-check, lint, check the migrations against the schema and
# check Prometheus's alert rules (and run their unit tests) and configuration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
. "${BERTH_STATE_DIR:-$HOME/.local/state/berth}/berth.env"
set +a
# Two passes. First every test file but those under test/integration/serial/, several files at
# a time (each in a process of its own; the tests of one file run in order): these tests make
# their own users, images, containers and tasks, and look only at those. Larger files first, so
# that the long ones do not start last. BERTH_TEST_CONCURRENCY sets its files at once (default
# 6: measured on a 2-core machine, 6 and 8 took about 3 minutes, 4 about a minute more).
#
# Then the tests that act on or count everything on the stack, in two lanes side by side and a
# tail. The host-a lane (serial/host-a/) stops MinIO and kills host-a's worker; the host-b lane
# (serial/host-b/) kills host-b's worker, sweeps host-b's networks, then counts host-b's worker's
# connections to its daemon. Neither lane touches the other's host, and nothing in the host-b
# lane uses MinIO. Each lane runs its files one at a time. Then, one at a time, what
# depends on every host and every container (the DCU cleanup schedules, which host a pull goes
# to), the nightly release last.
#
# The browser tests (test/browser/: the console in Debian's Chromium) make their own users and
# things too, but Chromium is heavy on 2 cores and the lanes mostly wait: they run after the host-a
# lane (it stops MinIO and kills host-a's worker; they use both: everything they make is on
# host-a), beside the rest of the host-b lane and the static checks, before the tail (which
# counts every container and removes everything). BERTH_BROWSER_TEST_CONCURRENCY sets their
# files at once (default 2).
mapfile -t concurrent < <(find test -name '*.test.ts' -not -path 'test/integration/serial/*' -not -path 'test/browser/*' -not -path 'test/cluster/*' -not -path 'test/compose/*' -printf '%s %p\n' | sort -rn | cut -d' ' -f2-)
mapfile -t browser < <(find test/browser -name '*.test.ts' | sort)
mapfile -t lane_a < <(find test/integration/serial/host-a -name '*.test.ts' | sort)
mapfile -t lane_b < <(find test/integration/serial/host-b -name '*.test.ts' | sort)
mapfile -t tail_files < <(find test/integration/serial -maxdepth 1 -name '*.test.ts' -not -name release.test.ts | sort)
tail_files+=(test/integration/serial/release.test.ts)
jobs=${BERTH_TEST_CONCURRENCY:-6}
browser_jobs=${BERTH_BROWSER_TEST_CONCURRENCY:-2}
run_tests() { node --import tsx --test --test-concurrency="$1" --test-reporter=spec "${@:2}"; }

echo "[test] ${#concurrent[@]} files, $jobs at a time"
run_tests "$jobs" "${concurrent[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# The static checks run beside the serial pass, whose tests mostly wait (for a worker to come
# back, for retries to be spent): they use the cores it leaves idle.
(
  echo "[test] type-check" && npx tsc --noEmit && npx tsc -p web/tsconfig.json &&
    echo "[test] lint" && npx eslint . &&
    echo "[test] migrations match the schema" && bash scripts/check-migrations.sh &&
    echo "[test] Prometheus: alert rules, their unit tests, the configuration" && bash scripts/check-prometheus.sh
) >"$logs/static" 2>&1 &
static_pid=$!
echo "[test] the serial pass: the host-a lane (${#lane_a[@]} files) then the browser tests (${#browser[@]} files, $browser_jobs at a time) beside the host-b lane (${#lane_b[@]} files); type-check, lint, the migrations and Prometheus checks beside them"
(
  lane_a_status=0
  run_tests 1 "${lane_a[@]}" >"$logs/host-a" 2>&1 || lane_a_status=1
  echo "$lane_a_status" >"$logs/host-a.status"
  run_tests "$browser_jobs" "${browser[@]}" >"$logs/browser" 2>&1
) &
lane_a_pid=$!
run_tests 1 "${lane_b[@]}" >"$logs/host-b" 2>&1 &
lane_b_pid=$!
status=0
wait "$lane_a_pid" || status=1
[[ $(cat "$logs/host-a.status") == 0 ]] || status=1
echo "[test] host-a lane" && cat "$logs/host-a"
echo "[test] browser tests" && cat "$logs/browser"
wait "$lane_b_pid" || status=1
echo "[test] host-b lane" && cat "$logs/host-b"
echo "[test] the serial pass's tail: ${#tail_files[@]} files, one at a time"
run_tests 1 "${tail_files[@]}" || status=1
wait "$static_pid" || status=1
cat "$logs/static"
exit "$status"
