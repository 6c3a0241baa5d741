#!/usr/bin/env bash
# npm run test:cluster: the production topology (scripts/stack.sh up:cluster, in place of the
# development stack), then the tests of test/cluster/ against it, one file at a time. The next
# `npm run up` or `npm test` goes back to the development stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/stack.sh up:cluster
settings=$(mktemp)
trap 'rm -f "$settings"' EXIT
bash scripts/stack.sh env >"$settings"
set -a
# shellcheck disable=SC1090
. "$settings"
set +a
mapfile -t files < <(find test/cluster -name '*.test.ts' | sort)
echo "[test:cluster] ${#files[@]} files"
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
