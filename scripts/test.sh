#!/usr/bin/env bash
# npm test: bring up whatever of the stack is not running, then type-check, check the
# migrations against the schema, and run the unit and integration tests on the real stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
. "${BERTH_STATE_DIR:-$HOME/.local/state/berth}/berth.env"
set +a
echo "[test] type-check" && npx tsc --noEmit
echo "[test] migrations match the schema" && npx drizzle-kit check >/dev/null
mapfile -t files < <(find test -name '*.test.ts' | sort)
# One file at a time: the nightly-release tests release everything on the stack.
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
