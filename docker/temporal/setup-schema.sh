#!/bin/sh
# docker-compose.yml's `temporal-schema` job, run by the official temporalio/admin-tools image
# before the Temporal server starts (the way Temporal's own compose examples set up a SQL store
# now that temporalio/auto-setup is deprecated): creates Temporal's two databases on the compose
# PostgreSQL and brings each schema to the newest version the image ships.
#
# Idempotent, so it runs at every `docker compose up`: an existing database is kept (create
# ignores "already exists"), setup-schema only creates the version tables if missing, and
# update-schema applies only the versions the database does not have yet (after an image upgrade).
#
# Settings (from the compose file): POSTGRES_SEEDS, DB_PORT, POSTGRES_USER, and SQL_PASSWORD,
# which temporal-sql-tool reads itself (no password on a command line).
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
schema_dir=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"
}

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db=${pair%%:*}
  schema=${pair#*:}
  echo "temporal-schema: database $db ($schema schema)"
  sql_tool --db "$db" create-database
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$schema_dir/$schema/versioned"
done
echo "temporal-schema: done"
