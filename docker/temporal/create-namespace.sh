#!/bin/sh
# docker-compose.yml's `temporal-namespace` job, run by the official temporalio/admin-tools image
# once the Temporal server is healthy: registers Berth's namespace (a server on a fresh database
# has none), then waits until the frontend serves it (its namespace cache refreshes every few
# seconds), so that Berth's processes, which start after this job, never see "namespace not found".
# Then Berth's search attributes (core/search-attributes.ts), all Keyword, in that namespace, and
# waits until the frontend lists them: a workflow started with one the server does not know is refused.
# Idempotent: an existing namespace is left as it is; creating an attribute that exists succeeds.
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

attributes="BerthUserId BerthHostId BerthResourceId"
# One at a time: given several names in one call, a server on SQL visibility added only the first.
for a in $attributes; do
  attempt=1
  until temporal operator search-attribute create --address "$address" --namespace "$namespace" --name "$a" --type Keyword; do
    [ "$attempt" -lt 30 ] || { echo "temporal-namespace: could not register the search attribute $a in $namespace" >&2; exit 1; }
    attempt=$((attempt + 1))
    sleep 2
  done
done

listed() {
  out=$(temporal operator search-attribute list --address "$address" --namespace "$namespace") || return 1
  for a in $attributes; do
    printf '%s\n' "$out" | grep -qw "$a" || return 1
  done
}
attempt=1
until listed; do
  [ "$attempt" -lt 30 ] || { echo "temporal-namespace: the search attributes $attributes are registered but not served in $namespace" >&2; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done
echo "temporal-namespace: $namespace is ready at $address, with the search attributes $attributes"
