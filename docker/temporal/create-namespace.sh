#!/bin/sh
# docker-compose.yml's `temporal-namespace` job, run by the official temporalio/admin-tools image
# once the Temporal server is healthy: registers Berth's namespace (a server on a fresh database
# has none), then waits until the frontend serves it (its namespace cache refreshes every few
# seconds), so that Berth's processes, which start after this job, never see "namespace not found".
# Idempotent: an existing namespace is left as it is.
#
# Settings: TEMPORAL_ADDRESS (host:port), TEMPORAL_NAMESPACE, TEMPORAL_NAMESPACE_RETENTION.
set -eu
address=${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}
namespace=${TEMPORAL_NAMESPACE:-default}
retention=${TEMPORAL_NAMESPACE_RETENTION:-72h}

attempt=1
until temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1 ||
  temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"; do
  [ "$attempt" -lt 30 ] || { echo "temporal-namespace: could not register $namespace at $address" >&2; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done

attempt=1
until temporal workflow list --address "$address" --namespace "$namespace" --limit 1 >/dev/null 2>&1; do
  [ "$attempt" -lt 30 ] || { echo "temporal-namespace: $namespace is registered but not served at $address" >&2; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done
echo "temporal-namespace: $namespace is ready at $address"
