#!/usr/bin/env bash
# Proves that the committed migrations match the drizzle schema, without a database and
# without touching the repository:
#   1. every migration in the journal has its SQL file and every SQL file is in the journal;
#   2. `drizzle-kit check`: the migration history is consistent (no snapshot collisions);
#   3. `drizzle-kit generate` against a temporary copy of the migrations folder produces
#      nothing: the latest snapshot is the schema. If it would generate a migration, the
#      schema was changed without `npm run db:generate`; the SQL it would write is printed.
# Usage: scripts/check-migrations.sh [SCHEMA]   (SCHEMA: another schema file to check the
# committed migrations against, to prove this check itself; default: drizzle.config.ts's.)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DRIZZLE_KIT=$ROOT/node_modules/.bin/drizzle-kit
[[ -x $DRIZZLE_KIT ]] || { echo "check-migrations: $DRIZZLE_KIT is missing: run npm install" >&2; exit 2; }

fail() { echo "check-migrations: FAIL: $*" >&2; exit 1; }

# Where the real configuration keeps the migrations and the schema (drizzle.config.ts is
# TypeScript: read it with tsx, a dependency).
mapfile -t settings < <(node --import tsx -e '
  const path = require("node:path");
  import(path.resolve("drizzle.config.ts")).then(({ default: c }) => {
    const schema = process.argv[1] ? [path.resolve(process.argv[1])]
      : [c.schema].flat().map((s) => path.resolve(s));
    console.log(path.relative(".", path.resolve(c.out)));
    console.log(JSON.stringify(schema));
    console.log(schema.map((s) => (path.relative(".", s).startsWith("..") ? s : path.relative(".", s))).join(", "));
  });' "${1:-}")
((${#settings[@]} == 3)) || fail "could not read drizzle.config.ts"
OUT=${settings[0]} SCHEMA_JSON=${settings[1]} SCHEMA_SHOWN=${settings[2]}
[[ -f $OUT/meta/_journal.json ]] || fail "no journal at $OUT/meta/_journal.json"

# 1. Journal and SQL files agree.
node -e '
  const fs = require("node:fs");
  const out = process.argv[1];
  const tags = JSON.parse(fs.readFileSync(`${out}/meta/_journal.json`, "utf8")).entries.map((e) => e.tag);
  const files = fs.readdirSync(out).filter((f) => f.endsWith(".sql")).map((f) => f.slice(0, -4));
  const problems = [
    ...tags.filter((t) => !files.includes(t)).map((t) => `journal entry ${t} has no ${out}/${t}.sql`),
    ...files.filter((f) => !tags.includes(f)).map((f) => `${out}/${f}.sql is not in the journal (drizzle migrate would skip it)`),
    ...tags.filter((t) => !fs.existsSync(`${out}/meta/${t.split("_")[0]}_snapshot.json`)).map((t) => `journal entry ${t} has no snapshot`),
  ];
  if (problems.length > 0) { console.error(problems.join("\n")); process.exit(1); }' "$OUT" \
  || fail "the journal and the SQL files in $OUT disagree (above)"

# A temporary copy of the migrations and a configuration that differs from the real one in
# `out` (and `schema`, made absolute) only. drizzle-kit resolves `out` from the working
# directory and refuses absolute paths, so it runs inside the temporary directory.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/berth-check-migrations.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cp -R "$OUT" "$TMP/migrations"
BASE_JSON=$(node -e 'console.log(JSON.stringify(process.argv[1]))' "$ROOT/drizzle.config.ts")
cat >"$TMP/drizzle.config.ts" <<EOF
import base from $BASE_JSON;
export default { ...base, schema: $SCHEMA_JSON, out: './migrations' };
EOF
touch "$TMP/.before"

# 2. The history is consistent.
if ! (cd "$TMP" && "$DRIZZLE_KIT" check --config ./drizzle.config.ts </dev/null >"$TMP/check.log" 2>&1); then
  cat "$TMP/check.log" >&2
  fail "drizzle-kit check: the migration history in $OUT is inconsistent (above)"
fi

# 3. Nothing to generate. drizzle-kit exits 0 even when it fails (for one, when it would have
# to ask whether a column was renamed), so success is its "No schema changes" line and no new
# file in the copy.
(cd "$TMP" && "$DRIZZLE_KIT" generate --config ./drizzle.config.ts </dev/null >"$TMP/generate.log" 2>&1) || true
mapfile -t generated < <(cd "$TMP" && find migrations -type f -newer .before | sort)
if ((${#generated[@]} > 0)); then
  {
    echo "check-migrations: FAIL: $SCHEMA_SHOWN and the committed migrations differ: drizzle-kit generate would write"
    printf '  %s\n' "${generated[@]/#migrations/$OUT}"
    for f in "${generated[@]}"; do
      [[ $f == *.sql ]] || continue
      echo "---- ${f/#migrations/$OUT}"
      cat "$TMP/$f"
      echo
    done
    echo "Run 'npm run db:generate' and commit the migration (never edit one that has run anywhere)."
  } >&2
  exit 1
fi
if grep -q 'Interactive prompts require a TTY' "$TMP/generate.log"; then
  fail "$SCHEMA_SHOWN and the committed migrations differ: drizzle-kit generate would ask whether a
table or column was renamed. Run 'npm run db:generate' in a terminal and commit the migration."
fi
if ! grep -q 'No schema changes' "$TMP/generate.log"; then
  cat "$TMP/generate.log" >&2
  fail "drizzle-kit generate did not confirm that the migrations match the schema (its output is above)"
fi
echo "check-migrations: OK: $(grep -c '"tag"' "$OUT/meta/_journal.json") migrations in $OUT match $SCHEMA_SHOWN"
