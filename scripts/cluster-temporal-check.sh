#!/usr/bin/env bash
# Proves scripts/cluster-temporal.sh on its own, on ports clear of the dev stack (haproxy
# 17233, UI 18233, nodes from 17300), state in /tmp/cluster-check: builds the tools, sets up
# the databases, starts the cluster, then checks it through haproxy with the temporal CLI,
# stops node 1 (the cluster keeps serving, histories stay readable), starts it again (it
# rejoins), crashes node 2 with SIGKILL and brings it back, fetches the UI, refuses clients
# without a certificate, binds a gateway address, and stops everything it started.
# The `temporal` and `temporal_visibility` databases stay: they are the ones cluster mode uses
# (the check refuses to run while cluster mode's Temporal is up, and keeps the role's password).
#
#   bash scripts/cluster-temporal-check.sh      prints each check and `N passed, N failed`
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export BERTH_STATE_DIR=${CLUSTER_CHECK_STATE:-/tmp/cluster-check/state}
# The check's own ports and directory, whatever the environment says for cluster mode's
# (CLUSTER_CHECK_* override them).
check_settings() {
  export CLUSTER_FRONT_PORT=${CLUSTER_CHECK_FRONT_PORT:-17233}
  export CLUSTER_UI_PORT=${CLUSTER_CHECK_UI_PORT:-18233}
  export CLUSTER_NODE_PORT_BASE=${CLUSTER_CHECK_NODE_PORT_BASE:-17300}
  export CLUSTER_DIR=${CLUSTER_CHECK_DIR:-/tmp/cluster-check}
  export CLUSTER_GATEWAY_IPS='' CLUSTER_TLS_SANS_EXTRA=''
  # info: the checks read the nodes' membership changes from their logs.
  export CLUSTER_LOG_LEVEL=info
}
check_settings
# stack.sh's helpers (log, die, wait_for, start_bg, stop_pidfile, pid_alive, go_tool, ...):
# everything before its command dispatch, which would run a command if sourced whole, with
# its ROOT set to this repository (it derives it from its own path, here a pipe's).
# shellcheck source=/dev/null
source <(sed -e '/^case \${1:-} in$/,$d' -e "s|^ROOT=.*|ROOT=$(printf '%q' "$ROOT")|" "$HERE/stack.sh")
check_settings
mkdir -p "$STATE" "$LOGS" "$RUN" "$TOOLS/bin"
GATEWAY_IP=127.0.0.77
# shellcheck source=scripts/cluster-temporal.sh
source "$HERE/cluster-temporal.sh"

passed=0 failed=0
section() { printf '\n== %s\n' "$*"; }
check_out=$(mktemp)
# expect DESCRIPTION COMMAND...: one check (run in this shell); its output is shown only when
# it fails; a wait's duration (retry_for) is shown either way. Matches on a command's output
# capture it first: `cmd | grep -q` fails under pipefail when grep's early exit kills cmd.
expect() {
  local what=$1; shift
  waited=''
  if "$@" >"$check_out" 2>&1; then
    passed=$((passed + 1)); printf 'ok    %s%s\n' "$what" "${waited:+ (after $waited s)}"
  else
    failed=$((failed + 1)); printf 'FAIL  %s%s\n' "$what" "${waited:+ (gave up after $waited s)}"; tail -20 "$check_out" | sed 's/^/      /'
  fi
}
# has TEXT COMMAND...: COMMAND succeeds and its output contains TEXT.
has() { local text=$1 o; shift; o=$("$@") && [[ $o == *"$text"* ]]; }
fails() { ! "$@"; }
# since_s T0: seconds since T0 (from `date +%s%N`), with a tenth.
since_s() { local ms=$((($(date +%s%N) - $1) / 1000000)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
# timed COMMAND...: runs it, then prints how long it took.
timed() {
  local t0; t0=$(date +%s%N)
  "$@"
  printf '(%s: %s s)\n' "$*" "$(since_s "$t0")"
}
# retry_for SECONDS COMMAND...: like wait_for, without dying; how long it took is in $waited.
retry_for() {
  local seconds=$1 t0 status=0; shift
  t0=$(date +%s%N)
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { status=1; break; }
    sleep 0.5
  done
  waited=$(since_s "$t0")
  return $status
}

added_gateway=''
cleanup() {
  [[ -n $added_gateway ]] && ip addr del "$GATEWAY_IP/32" dev lo 2>/dev/null
  rm -f "$check_out"
  stop_temporal_cluster
}
trap cleanup EXIT

section "build (cached after the first time) and databases"
# The databases and the role are cluster mode's. Nodes of another running cluster would join
# this one's ring (membership goes by the cluster id stored there): refuse then. Read as the
# superuser, before anything changes.
ours=" "
for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
  for s in frontend history matching worker; do ours+="127.0.0.1:$(temporal_node_port "$n" "$s" membership) "; done
done
while read -r address; do
  [[ -z $address || $ours == *" $address "* ]] || die "another Temporal cluster is running on these databases ($address): stop it first"
done < <(runuser -u postgres -- psql -X -tA -p "$CLUSTER_PG_PORT" -d "$CLUSTER_DB_NAME" -c "select rpc_address || ':' || rpc_port
  from cluster_membership where last_heartbeat > (now() at time zone 'utc') - interval '20 seconds'" 2>/dev/null || true)
# The role's password is cluster mode's when it has one: setup_temporal_db would otherwise set
# the role to this check's own, and cluster mode's nodes could not connect until its next up.
cluster_mode_password=${CLUSTER_MODE_DIR:-$HOME/.local/state/berth/cluster}/temporal-db.password
if [[ -s $cluster_mode_password ]]; then
  mkdir -p "$CLUSTER_DIR"
  (umask 077 && cp "$cluster_mode_password" "$CLUSTER_DIR/temporal-db.password")
fi
timed build_cluster_tools
timed setup_temporal_db
printf 'schema versions: %s %s, %s %s\n' "$CLUSTER_DB_NAME" "$(_temporal_schema_version "$CLUSTER_DB_NAME")" \
  "$CLUSTER_VISIBILITY_DB_NAME" "$(_temporal_schema_version "$CLUSTER_VISIBILITY_DB_NAME")"
echo "setup_temporal_db again (nothing to do):"
timed setup_temporal_db

section "start"
timed start_temporal_cluster
echo "start_temporal_cluster again (nothing to do, prints nothing):"
timed start_temporal_cluster
cluster_temporal_status_rows
for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
  printf 'node %s: frontend %s/%s/%s (grpc/membership/http), history %s/%s, matching %s/%s, worker %s/%s\n' "$n" \
    "$(temporal_node_port "$n" frontend)" "$(temporal_node_port "$n" frontend membership)" "$(temporal_node_port "$n" frontend http)" \
    "$(temporal_node_port "$n" history)" "$(temporal_node_port "$n" history membership)" \
    "$(temporal_node_port "$n" matching)" "$(temporal_node_port "$n" matching membership)" \
    "$(temporal_node_port "$n" worker)" "$(temporal_node_port "$n" worker membership)"
done
echo "membership (cluster_membership, live rows):"
temporal_cluster_members | sed 's/^/  /'

section "through haproxy, with the CLI"
temporal_cli operator cluster describe --detail
expect "temporal workflow list" temporal_cli workflow list --limit 5
expect "namespace default is registered, retention 72h" \
  has '"workflowExecutionRetentionTtl": "259200s"' temporal_cli operator namespace describe --namespace default -o json
for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
  expect "Berth's search attributes (${SEARCH_ATTRIBUTES[*]}) in default, on node $n's frontend" has_search_attributes default _temporal_node_cli "$n"
done
run=check-$(date +%s)
workflows=()
for i in 1 2 3 4 5 6 7 8; do workflows+=("cluster-$run-$i"); done
start_workflow() { temporal_cli workflow start --task-queue cluster-check-no-worker --type ClusterCheck --workflow-id "$1" --input '"hello"' >/dev/null; }
# Eight workflows: with 4 shards over 2 nodes, some live on shards node 1 owns.
for w in "${workflows[@]}"; do expect "start workflow $w (task queue without a worker)" start_workflow "$w"; done
temporal_cli workflow describe --workflow-id "${workflows[0]}" | sed -n '1,12p'
running() { has '"status": "WORKFLOW_EXECUTION_STATUS_RUNNING"' temporal_cli workflow describe --workflow-id "$1" -o json; }
history_readable() { has EVENT_TYPE_WORKFLOW_EXECUTION_STARTED temporal_cli workflow show --workflow-id "$1" -o json; }
all_readable() { local w; for w in "${workflows[@]}"; do running "$w" && history_readable "$w" || return 1; done; }
expect "all 8 workflows are running and their histories readable" all_readable
listed() { has 'Total: 8' temporal_cli workflow count --query "WorkflowId STARTS_WITH 'cluster-$run-'"; }
expect "temporal workflow count sees all 8 (visibility)" retry_for 30 listed

# node2_history_ring SINCE: the last history ring node 2 logged since SINCE (it logs each change).
node2_history_ring() {
  local line ts last=''
  while IFS= read -r line; do
    [[ $line =~ \"ts\":\"([^\"]*)\" ]] || continue
    ts=${BASH_REMATCH[1]}
    [[ $ts < $1 ]] && continue
    [[ $line =~ \"addresses\":(\[[^]]*\]) ]] && last=${BASH_REMATCH[1]}
  done < <(grep '"Current reachable members"' "$LOGS/temporal-node2.log" | grep '"service":"history"')
  [[ -n $last ]] && printf '%s\n' "$last"
}
node2_ring_has_node1() { [[ $(node2_history_ring "$1") == *"127.0.0.1:$(temporal_node_port 1 history)"* ]]; }
node2_ring_lacks_node1() { local r; r=$(node2_history_ring "$1") && [[ $r != *"127.0.0.1:$(temporal_node_port 1 history)"* ]]; }

section "stop node 1 (SIGTERM)"
stopped=$(date -u +%Y-%m-%dT%H:%M:%S)
timed stop_temporal_node 1
expect "node 2's history ring drops node 1" retry_for 30 node2_ring_lacks_node1 "$stopped"
echo "  node 2's history ring: $(node2_history_ring "$stopped")"
expect "node 1 is down" fails temporal_node_up 1
expect "the cluster answers through haproxy" temporal_cluster_up
expect "all 8 workflows readable with node 1 down" retry_for 60 all_readable
temporal_cli workflow show --workflow-id "${workflows[0]}"
expect "a new workflow starts with node 1 down" start_workflow "cluster-$run-while-node1-down"
cluster_temporal_status_rows

section "start node 1 again: it rejoins"
restart=$(date -u +%Y-%m-%dT%H:%M:%S)
timed start_temporal_node 1
node1_rejoined() {
  local rows; rows=$(temporal_cluster_members)
  local s port start
  for s in frontend history matching worker; do
    port=$(temporal_node_port 1 "$s" membership)
    # The latest session on that port (the previous one's rows stay live for up to 20 s).
    start=$(awk -v a="127.0.0.1:$port" '$2 == a {print $3}' <<<"$rows" | sort | tail -1)
    [[ -n $start && ! $start < "${restart}Z" ]] || return 1
  done
}
expect "node 1's four services are live members again (new sessions in cluster_membership)" retry_for 30 node1_rejoined
temporal_cluster_members | sed 's/^/  /'
expect "node 2's history ring lists node 1's history service again" retry_for 30 node2_ring_has_node1 "$restart"
echo "  node 2's history ring: $(node2_history_ring "$restart")"
node1_serves() {
  local flags; mapfile -t flags < <(temporal_tls_flags)
  "$TEMPORAL_BIN" workflow describe --workflow-id "${workflows[0]}" --address "127.0.0.1:$(temporal_node_port 1 frontend)" "${flags[@]}" >/dev/null
}
expect "node 1's own frontend serves a workflow" node1_serves
expect "all 8 workflows readable after the rejoin" retry_for 60 all_readable

section "crash node 2 (SIGKILL), then start it again"
stop_temporal_node 2 KILL
expect "node 2 is down" fails temporal_node_up 2
expect "all 8 workflows readable after node 2 crashed" retry_for 90 all_readable
expect "a new workflow starts with node 2 crashed" start_workflow "cluster-$run-after-node2-crash"
timed start_temporal_node 2
expect "the cluster answers with both nodes" temporal_cluster_up
cluster_temporal_status_rows

section "Web UI server"
ui_code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CLUSTER_UI_PORT/")
echo "GET http://127.0.0.1:$CLUSTER_UI_PORT/ -> $ui_code"
expect "the UI page answers 200" test "$ui_code" = 200
expect "the UI server reads workflows from the cluster (mTLS through haproxy)" \
  has "${workflows[0]}" curl -fsS "http://127.0.0.1:$CLUSTER_UI_PORT/api/v1/namespaces/default/workflows?query=WorkflowId%3D%22${workflows[0]}%22"

section "Berth's Temporal SDK over mTLS (the client on grpc-js, a worker on the Rust core)"
# Connects as Berth's processes will, with temporal.env's settings: a workflow whose activity
# runs on the same task queue (eager), five times. Skipped without node_modules (npm install).
sdk_check() {
  local dir rc=0
  dir=$(mktemp -d)
  ln -s "$ROOT/node_modules" "$dir/node_modules"
  cat >"$dir/workflows.js" <<'JS'
const { proxyActivities } = require('@temporalio/workflow');
const { greet } = proxyActivities({ startToCloseTimeout: '10s' });
exports.clusterCheckGreeter = async (name) => greet(name);
JS
  cat >"$dir/check.js" <<'JS'
const fs = require('fs');
const path = require('path');
const { Connection, Client } = require('@temporalio/client');
const { Worker, NativeConnection, Runtime, DefaultLogger } = require('@temporalio/worker');
Runtime.install({ logger: new DefaultLogger('WARN') });
const env = Object.fromEntries(fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
const tls = {
  serverNameOverride: env.BERTH_TEMPORAL_TLS_SERVER_NAME,
  serverRootCACertificate: fs.readFileSync(env.BERTH_TEMPORAL_TLS_CA),
  clientCertPair: { crt: fs.readFileSync(env.BERTH_TEMPORAL_TLS_CERT), key: fs.readFileSync(env.BERTH_TEMPORAL_TLS_KEY) },
};
(async () => {
  const connection = await Connection.connect({ address: env.BERTH_TEMPORAL_ADDRESS, tls });
  const client = new Client({ connection, namespace: 'default' });
  const native = await NativeConnection.connect({ address: env.BERTH_TEMPORAL_ADDRESS, tls });
  const worker = await Worker.create({
    connection: native, namespace: 'default', taskQueue: 'cluster-check-sdk',
    workflowsPath: path.join(__dirname, 'workflows.js'), activities: { greet: async (n) => `hello ${n}` },
  });
  const t0 = Date.now();
  const results = await worker.runUntil(async () => {
    const out = [];
    for (let i = 0; i < 5; i++) {
      out.push(await client.workflow.execute('clusterCheckGreeter', {
        taskQueue: 'cluster-check-sdk', workflowId: `cluster-check-sdk-${Date.now()}-${i}`, args: [`n${i}`],
      }));
    }
    return out;
  });
  console.log(`${JSON.stringify(results)} in ${Date.now() - t0} ms`);
  await connection.close();
  await native.close();
})().catch((e) => { console.error(e); process.exit(1); });
JS
  (cd "$dir" && timeout 180 node check.js "$CLUSTER_DIR/temporal.env") || rc=$?
  rm -rf "$dir"
  return $rc
}
if [[ -d $ROOT/node_modules/@temporalio/worker ]]; then
  expect "five workflows with an activity each, through haproxy with temporal.env's certificates" sdk_check
  tail -1 "$check_out" | sed 's/^/  /'
else
  echo "skipped: no $ROOT/node_modules (npm install)"
fi

section "clients without a certificate are refused"
tls=$(cluster_tls_dir)
no_client_cert() { "$TEMPORAL_BIN" operator cluster health --address "$1" --tls-ca-path "$tls/ca.pem" --tls-server-name "$CLUSTER_TLS_SERVER_NAME"; }
plaintext() { "$TEMPORAL_BIN" operator cluster health --address "$1" --tls=false; }
expect "TLS without a client certificate, through haproxy: refused" fails no_client_cert "127.0.0.1:$CLUSTER_FRONT_PORT"
expect "TLS without a client certificate, node 1's frontend: refused" fails no_client_cert "127.0.0.1:$(temporal_node_port 1 frontend)"
expect "plaintext, through haproxy: refused" fails plaintext "127.0.0.1:$CLUSTER_FRONT_PORT"
other=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stranger -days 1 \
  -keyout "$other/key.pem" -out "$other/cert.pem" 2>/dev/null
foreign_cert() {
  "$TEMPORAL_BIN" operator cluster health --address "127.0.0.1:$CLUSTER_FRONT_PORT" --tls-ca-path "$tls/ca.pem" \
    --tls-cert-path "$other/cert.pem" --tls-key-path "$other/key.pem" --tls-server-name "$CLUSTER_TLS_SERVER_NAME"
}
expect "a client certificate from another CA: refused" fails foreign_cert
rm -rf "$other"
# TLS 1.2, where the server's refusal comes within the handshake (TLS 1.3 sends it after).
internode_without_cert() {
  local o
  o=$(openssl s_client -tls1_2 -connect "127.0.0.1:$(temporal_node_port 1 history)" \
    -servername temporal-internode.berth.internal -CAfile "$tls/ca.pem" </dev/null 2>&1) || true
  printf '%s\n' "$o"
  [[ $o == *'alert handshake failure'* ]]
}
expect "node 1's history port (internode mTLS) refuses a client without a certificate" internode_without_cert
printf 'the CLI without a client certificate says: '
no_client_cert "127.0.0.1:$CLUSTER_FRONT_PORT" 2>&1 | tail -1 | cut -c1-220 || true

section "gateway address ($GATEWAY_IP on lo, standing in for a veth address)"
export CLUSTER_GATEWAY_IPS=$GATEWAY_IP
start_temporal_cluster
expect "haproxy does not bind $GATEWAY_IP while no interface has it" fails grep -q "$GATEWAY_IP" "$CLUSTER_DIR/haproxy.cfg"
expect "the frontend certificate names $GATEWAY_IP" grep -q "IP:$GATEWAY_IP" "$(cluster_tls_dir)/temporal-frontend.spec"
ip addr add "$GATEWAY_IP/32" dev lo && added_gateway=1
start_temporal_cluster
via_gateway() {
  local flags; mapfile -t flags < <(temporal_tls_flags)
  "$TEMPORAL_BIN" operator cluster health --address "$GATEWAY_IP:$CLUSTER_FRONT_PORT" "${flags[@]}"
}
expect "after the address appears, start_temporal_cluster reloads haproxy onto it" via_gateway
ip addr del "$GATEWAY_IP/32" dev lo && added_gateway=''
export CLUSTER_GATEWAY_IPS=''
start_temporal_cluster
expect "the gateway bind is gone again" fails grep -q "$GATEWAY_IP" "$CLUSTER_DIR/haproxy.cfg"
expect "the cluster answers after the reloads" temporal_cluster_up

section "clean up the check's workflows (they share cluster mode's namespace)"
left="WorkflowId STARTS_WITH 'cluster-check-' AND ExecutionStatus = 'Running'"
temporal_cli workflow terminate --query "$left" --reason "cluster-temporal-check.sh" --yes >/dev/null
none_left() { has 'Total: 0' temporal_cli workflow count --query "$left"; }
expect "no cluster-check-* workflow left running (batch terminate)" retry_for 60 none_left

section "temporal.env"
cat "$CLUSTER_DIR/temporal.env"
stat -c '%A %n' "$(cluster_tls_dir)"/*key.pem "$CLUSTER_DIR/temporal-db.password"

section "stop"
timed stop_temporal_cluster
trap 'rm -f "$check_out"' EXIT
down() { ! pid_alive "$RUN/$1.pid"; }
for p in temporal-node1 temporal-node2 temporal-lb temporal-ui-server; do expect "$p stopped" down "$p"; done
expect "nothing listens on $CLUSTER_FRONT_PORT or $CLUSTER_UI_PORT any more" \
  bash -c "! ss -ltn | grep -q ':$CLUSTER_FRONT_PORT \|:$CLUSTER_UI_PORT '"
cluster_temporal_status_rows

printf '\n%s passed, %s failed\n' "$passed" "$failed"
((failed == 0))
