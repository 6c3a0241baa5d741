#!/usr/bin/env bash
# npm run test:browser [file...]: the console's browser tests (test/browser/, Debian's Chromium
# headless) on the running stack, all of them or the files given. `npm test` runs them too, in its
# serial pass (scripts/test.sh); this runs them alone, for work on the console. It does not start
# the stack (`npm run up` does): the API must answer. BERTH_SCREENSHOTS=1 writes
# docs/screenshots/<page>-{desktop,mobile}.png; BERTH_BROWSER_TEST_CONCURRENCY sets the files at
# once (default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
set -a
# shellcheck disable=SC1091
. "${BERTH_STATE_DIR:-$HOME/.local/state/berth}/berth.env"
set +a
api="http://127.0.0.1:${BERTH_API_PORT:-8080}"
curl -fsS -o /dev/null "$api/readyz" || { echo "the stack's API ($api) is not ready: npm run up" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || { echo "no /usr/bin/chromium: npm run up installs it (Debian's chromium)" >&2; exit 1; }
files=("$@")
((${#files[@]} > 0)) || mapfile -t files < <(find test/browser -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency="${BERTH_BROWSER_TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}"
