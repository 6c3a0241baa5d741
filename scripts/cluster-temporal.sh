# shellcheck shell=bash
# Cluster mode's Temporal (issue 14), sourced by scripts/stack.sh: the real Temporal server
# (v1.29.1) on PostgreSQL as two nodes, each running frontend, history, matching and worker,
# that find each other through the shared SQL store (cluster_membership); haproxy in TCP
# mode in front of both frontends; mTLS on the frontends and between the nodes; the
# standalone Web UI server against the cluster.
#
# It uses stack.sh's ROOT, STATE, TOOLS, LOGS, RUN, TEMPORAL_BIN and its log, die,
# wait_for, start_bg, stop_pidfile, pid_alive and go_tool. Every function is idempotent:
# a second call with everything up does nothing.
#
#   build_cluster_tools          the server, temporal-sql-tool and the UI server, built once
#   ensure_ca, issue_cert NAME KIND SANS, ensure_temporal_certs
#   setup_temporal_db            role, databases and schemas on 127.0.0.1:5432
#   start_temporal_cluster       both nodes, haproxy, the `default` namespace and Berth's search
#                                attributes in it, the UI server
#   stop_temporal_cluster, start_temporal_node N, stop_temporal_node N [KILL]
#   temporal_cluster_up, temporal_node_up N, temporal_cli ARGS..., temporal_cluster_members
#   cluster_temporal_status_rows rows for stack.sh's status
#
# Layout of $CLUSTER_DIR: tls/ (ca.pem, NAME.pem, NAME-key.pem), temporal-db.password,
# node1/ node2/ (config/node.yaml), dynamicconfig.yaml, haproxy.cfg, ui/ (config/base.yaml),
# temporal.env (what Berth's processes need to connect).
#
# Ports: haproxy on 127.0.0.1:$CLUSTER_FRONT_PORT (and every address of $CLUSTER_GATEWAY_IPS
# that exists on an interface); node N's services from
# $CLUSTER_NODE_PORT_BASE + (N-1)*100 (see temporal_node_port); the UI on $CLUSTER_UI_PORT.

: "${CLUSTER_DIR:=$STATE/cluster}"
: "${CLUSTER_FRONT_PORT:=7233}"
: "${CLUSTER_UI_PORT:=8233}"
# Extra addresses haproxy binds $CLUSTER_FRONT_PORT on (comma- or space-separated), each only
# while it exists on an interface; they are in the frontend certificate's SANs either way.
: "${CLUSTER_GATEWAY_IPS:=}"
# Extra SANs for the frontend certificate: `IP:10.0.0.1`, `DNS:name`, or bare addresses/names.
: "${CLUSTER_TLS_SANS_EXTRA:=}"
: "${CLUSTER_NODE_PORT_BASE:=7300}"
: "${CLUSTER_TLS_SERVER_NAME:=temporal.berth.internal}"
: "${CLUSTER_PG_HOST:=127.0.0.1}"
: "${CLUSTER_PG_PORT:=${PG_PORT:-5432}}"
: "${CLUSTER_DB_USER:=temporal}"
: "${CLUSTER_DB_NAME:=temporal}"
: "${CLUSTER_VISIBILITY_DB_NAME:=temporal_visibility}"
# Fixed once the databases exist: the server ignores a different value (with an error in its
# log) and keeps the count stored in cluster_metadata.
: "${CLUSTER_HISTORY_SHARDS:=4}"
: "${CLUSTER_NAMESPACE_RETENTION:=72h}"
# warn, like the dev server in stack.sh; info adds membership and shard movements (and a few
# lines a minute while idle: the certificate reloads).
: "${CLUSTER_LOG_LEVEL:=warn}"
# Connections per service and node (a node runs 4 services, each with its own pool): two nodes
# take at most 2 * 4 * (6 + 2) = 64 of PostgreSQL's 100 by default.
: "${CLUSTER_DB_MAX_CONNS:=6}"
: "${CLUSTER_VISIBILITY_DB_MAX_CONNS:=2}"

TEMPORAL_SERVER_VERSION=v1.29.1
# The newest ui-server whose go.mod asks for no more than the machine's Go 1.26.8
# (v2.56.0 asks for 1.26.9, v2.56.3 and later for 1.26.10).
TEMPORAL_UI_SERVER_VERSION=v2.55.0
TEMPORAL_SERVER_BIN=$TOOLS/bin/temporal-server-$TEMPORAL_SERVER_VERSION
TEMPORAL_SQL_TOOL_BIN=$TOOLS/bin/temporal-sql-tool-$TEMPORAL_SERVER_VERSION
TEMPORAL_UI_SERVER_BIN=$TOOLS/bin/temporal-ui-server-$TEMPORAL_UI_SERVER_VERSION
TEMPORAL_CLUSTER_NODES=(1 2)

# ---------------------------------------------------------------- tools
# The PostgreSQL schemas (setup and versioned updates) of the pinned server, from Go's module cache.
temporal_schema_dir() {
  printf '%s/go.temporal.io/server@%s/schema/postgresql/v12\n' "$(go env GOMODCACHE)" "$TEMPORAL_SERVER_VERSION"
}

build_cluster_tools() {
  go_tool "$TEMPORAL_SERVER_BIN" "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION"
  go_tool "$TEMPORAL_SQL_TOOL_BIN" "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
  go_tool "$TEMPORAL_UI_SERVER_BIN" "github.com/temporalio/ui-server/v2/cmd/server@$TEMPORAL_UI_SERVER_VERSION"
  local schema; schema=$(temporal_schema_dir)
  if [[ ! -d $schema/temporal/versioned || ! -d $schema/visibility/versioned ]]; then
    log "downloading go.temporal.io/server@$TEMPORAL_SERVER_VERSION for its schema files"
    (cd "$TOOLS" && go mod download "go.temporal.io/server@$TEMPORAL_SERVER_VERSION") >>"$LOGS/build-temporal-schema.log" 2>&1 \
      || die "go mod download go.temporal.io/server@$TEMPORAL_SERVER_VERSION failed (see $LOGS/build-temporal-schema.log)"
    [[ -d $schema/temporal/versioned ]] || die "no schema files in $schema"
  fi
}

ensure_haproxy() {
  command -v haproxy >/dev/null && return 0
  log "installing Debian package: haproxy"
  apt-get update -qq >>"$LOGS/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >>"$LOGS/apt.log" 2>&1 \
    || die "apt-get install haproxy failed (see $LOGS/apt.log)"
}

# ---------------------------------------------------------------- certificates
# Generic: stack.sh reuses them for Docker's and the host workers' certificates.
# $CLUSTER_DIR/tls holds ca.pem, ca-key.pem and, per certificate, NAME.pem, NAME-key.pem and
# NAME.spec (the KIND and SANs it was issued for). Keys are ECDSA P-256, mode 600.

cluster_tls_dir() { printf '%s/tls\n' "$CLUSTER_DIR"; }

# A cert that verifies against the CA and is good for 30 more days.
_cert_fresh() {
  local tls; tls=$(cluster_tls_dir)
  openssl verify -CAfile "$tls/ca.pem" "$1" >/dev/null 2>&1 && openssl x509 -checkend 2592000 -noout -in "$1" >/dev/null 2>&1
}

_new_key() { (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null); }

ensure_ca() {
  local tls; tls=$(cluster_tls_dir)
  mkdir -p "$tls"
  if [[ -s $tls/ca.pem && -s $tls/ca-key.pem ]] && openssl x509 -checkend 2592000 -noout -in "$tls/ca.pem" >/dev/null 2>&1; then
    return 0
  fi
  log "creating the certificate authority in $tls"
  _new_key "$tls/ca-key.pem.new"
  openssl req -x509 -new -key "$tls/ca-key.pem.new" -sha256 -days 3650 -out "$tls/ca.pem.new" -config <(cat <<'EOF'
[req]
prompt = no
distinguished_name = dn
x509_extensions = ca
[dn]
O = Berth
CN = Berth cluster CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
  ) 2>"$tls/openssl.err" || die "openssl could not create the CA: $(cat "$tls/openssl.err")"
  mv "$tls/ca-key.pem.new" "$tls/ca-key.pem"
  mv "$tls/ca.pem.new" "$tls/ca.pem"
  rm -f "$tls/openssl.err"
}

# normalize_sans LIST: `DNS:a,IP:1.2.3.4` from a comma- or space-separated list whose bare
# items are taken as IP addresses when they look like one, else as DNS names; duplicates dropped.
normalize_sans() {
  local item items out=() seen=' '
  IFS=', ' read -r -a items <<<"${1:-}"
  for item in "${items[@]}"; do
    [[ -n $item ]] || continue
    case $item in
      DNS:* | IP:* | URI:* | email:*) ;;
      *) if [[ $item =~ ^[0-9.]+$ || $item == *:* ]]; then item=IP:$item; else item=DNS:$item; fi ;;
    esac
    [[ $seen == *" $item "* ]] && continue
    seen+="$item "
    out+=("$item")
  done
  (IFS=,; printf '%s\n' "${out[*]}")
}

# issue_cert NAME KIND SANS: KIND is server, client or both (the extended key usages);
# SANS a comma list like `DNS:localhost,IP:127.0.0.1` (may be empty for a client). Issued
# again when the KIND or SANs changed, the CA changed, or it expires within 30 days.
issue_cert() {
  local name=$1 kind=$2 sans eku tls spec
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "issue_cert: bad certificate name: $name"
  case $kind in
    server) eku=serverAuth ;;
    client) eku=clientAuth ;;
    both) eku=serverAuth,clientAuth ;;
    *) die "issue_cert: KIND must be server, client or both (got: $kind)" ;;
  esac
  sans=$(normalize_sans "${3:-}")
  tls=$(cluster_tls_dir)
  ensure_ca
  spec="$kind $sans"
  if [[ -s $tls/$name.pem && -s $tls/$name-key.pem && $(cat "$tls/$name.spec" 2>/dev/null) == "$spec" ]] && _cert_fresh "$tls/$name.pem"; then
    return 0
  fi
  log "issuing certificate $name ($kind${sans:+; $sans})"
  _new_key "$tls/$name-key.pem.new"
  openssl req -new -key "$tls/$name-key.pem.new" -subj "/O=Berth/CN=$name" -out "$tls/$name.csr" 2>"$tls/openssl.err" \
    || die "openssl could not make a request for $name: $(cat "$tls/openssl.err")"
  openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 -out "$tls/$name.pem.new" -extensions leaf -extfile <(
      printf '[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n'
      printf 'extendedKeyUsage = %s\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid,issuer\n' "$eku"
      [[ -z $sans ]] || printf 'subjectAltName = %s\n' "$sans"
    ) 2>"$tls/openssl.err" || die "openssl could not sign $name: $(cat "$tls/openssl.err")"
  rm -f "$tls/$name.csr" "$tls/openssl.err"
  mv "$tls/$name-key.pem.new" "$tls/$name-key.pem"
  mv "$tls/$name.pem.new" "$tls/$name.pem"
  printf '%s\n' "$spec" >"$tls/$name.spec"
}

cluster_gateway_ips() {
  local ips
  IFS=', ' read -r -a ips <<<"$CLUSTER_GATEWAY_IPS"
  ((${#ips[@]})) && printf '%s\n' "${ips[@]}"
  return 0
}

# The address is on one of this machine's interfaces (exactly, not just inside a subnet).
address_exists() { [[ -n $(ip -o addr show to "$1" 2>/dev/null) ]]; }

# frontend: what clients (Berth's processes, the CLI, the UI server, Docker containers through a
# gateway address) dial; internode: the nodes to each other (server and client), and the
# system worker to the frontends; temporal-client: Berth's processes, the CLI, the UI server.
ensure_temporal_certs() {
  local sans="DNS:$CLUSTER_TLS_SERVER_NAME,DNS:localhost,IP:127.0.0.1" ip
  for ip in $(cluster_gateway_ips); do sans+=",IP:$ip"; done
  issue_cert temporal-frontend server "$sans,$CLUSTER_TLS_SANS_EXTRA"
  issue_cert temporal-internode both "DNS:temporal-internode.berth.internal,DNS:localhost,IP:127.0.0.1"
  issue_cert temporal-client client "DNS:temporal-client.berth.internal"
}

# ---------------------------------------------------------------- PostgreSQL
temporal_db_password() { cat "$CLUSTER_DIR/temporal-db.password"; }

# _temporal_psql DB ARGS...: psql as the temporal role.
_temporal_psql() {
  local db=$1; shift
  PGPASSWORD=$(temporal_db_password) psql -X -q -h "$CLUSTER_PG_HOST" -p "$CLUSTER_PG_PORT" -U "$CLUSTER_DB_USER" -d "$db" "$@"
}

# The schema version the database is at ("" before setup-schema).
_temporal_schema_version() {
  _temporal_psql "$1" -tAc "select curr_version from schema_version" 2>/dev/null || true
}

_latest_schema_version() { find "$1" -mindepth 1 -maxdepth 1 -type d -name 'v*' -printf '%f\n' | sed 's/^v//' | sort -V | tail -1; }

setup_temporal_db() {
  local pwfile=$CLUSTER_DIR/temporal-db.password schema db dir latest
  mkdir -p "$CLUSTER_DIR"
  if [[ ! -s $pwfile ]]; then
    (umask 077 && openssl rand -hex 20 >"$pwfile.new") && mv "$pwfile.new" "$pwfile"
  fi
  # The role and databases; the password is set only when it does not already work.
  if ! _temporal_psql "$CLUSTER_DB_NAME" -tAc 'select 1' >/dev/null 2>&1 \
    || [[ $(_temporal_psql "$CLUSTER_VISIBILITY_DB_NAME" -tAc "select count(*) from pg_extension where extname = 'btree_gin'" 2>/dev/null) != 1 ]]; then
    log "creating PostgreSQL role $CLUSTER_DB_USER and databases $CLUSTER_DB_NAME, $CLUSTER_VISIBILITY_DB_NAME"
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$CLUSTER_PG_PORT" -v pw="$(temporal_db_password)" \
      -v user="$CLUSTER_DB_USER" -v db="$CLUSTER_DB_NAME" -v vdb="$CLUSTER_VISIBILITY_DB_NAME" postgres >/dev/null <<'EOF' \
      || die "could not create the Temporal role and databases"
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')\gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'vdb', :'user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'vdb')\gexec
\c :"vdb"
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS btree_gin;
EOF
  fi
  schema=$(temporal_schema_dir)
  for db in "$CLUSTER_DB_NAME:temporal" "$CLUSTER_VISIBILITY_DB_NAME:visibility"; do
    dir=$schema/${db#*:}/versioned
    db=${db%%:*}
    [[ -d $dir ]] || die "no schema files in $dir (run build_cluster_tools)"
    latest=$(_latest_schema_version "$dir")
    [[ $(_temporal_schema_version "$db") == "$latest" ]] && continue
    log "Temporal schema of $db: setting up / updating to $latest"
    if [[ -z $(_temporal_schema_version "$db") ]]; then
      _temporal_sql_tool "$db" setup-schema -v 0.0 || die "temporal-sql-tool setup-schema on $db failed (see $LOGS/temporal-sql-tool.log)"
    fi
    _temporal_sql_tool "$db" update-schema -d "$dir" || die "temporal-sql-tool update-schema on $db failed (see $LOGS/temporal-sql-tool.log)"
  done
}

# _temporal_sql_tool DB COMMAND...: the password goes by environment, not on the command line.
_temporal_sql_tool() {
  local db=$1; shift
  SQL_PASSWORD=$(temporal_db_password) "$TEMPORAL_SQL_TOOL_BIN" --plugin postgres12 --ep "$CLUSTER_PG_HOST" -p "$CLUSTER_PG_PORT" \
    -u "$CLUSTER_DB_USER" --db "$db" "$@" >>"$LOGS/temporal-sql-tool.log" 2>&1
}

# ---------------------------------------------------------------- the nodes
# temporal_node_port N SERVICE [grpc|membership|http]: node N's port for a service; `metrics`
# for the node's /metrics (Prometheus), one for all its services.
temporal_node_port() {
  local n=$1 service=$2 kind=${3:-grpc} offset
  case $service in frontend) offset=0 ;; history) offset=10 ;; matching) offset=20 ;; worker) offset=30 ;; metrics) offset=40 ;; *) die "no such service: $service" ;; esac
  case $kind in grpc) ;; membership) offset=$((offset + 1)) ;; http) offset=$((offset + 2)) ;; *) die "no such port kind: $kind" ;; esac
  printf '%s\n' $((CLUSTER_NODE_PORT_BASE + (n - 1) * 100 + offset))
}

# The CLI's flags for the cluster's frontends (mTLS with the temporal-client certificate).
temporal_tls_flags() {
  local tls; tls=$(cluster_tls_dir)
  printf '%s\n' --tls-ca-path "$tls/ca.pem" --tls-cert-path "$tls/temporal-client.pem" \
    --tls-key-path "$tls/temporal-client-key.pem" --tls-server-name "$CLUSTER_TLS_SERVER_NAME"
}

# temporal_cli ARGS...: the CLI against the cluster through haproxy. The flags go before a
# `--` if ARGS have one; an --address in ARGS is overridden.
temporal_cli() {
  local flags args=() a done=''
  mapfile -t flags < <(temporal_tls_flags)
  flags=(--address "127.0.0.1:$CLUSTER_FRONT_PORT" "${flags[@]}")
  for a in "$@"; do
    if [[ -z $done && $a == -- ]]; then args+=("${flags[@]}"); done=1; fi
    args+=("$a")
  done
  [[ -n $done ]] || args+=("${flags[@]}")
  "$TEMPORAL_BIN" "${args[@]}"
}

temporal_cluster_up() { temporal_cli operator cluster health >/dev/null 2>&1; }

# Node N's own frontend answers (directly, not through haproxy).
temporal_node_up() {
  local flags
  mapfile -t flags < <(temporal_tls_flags)
  "$TEMPORAL_BIN" operator cluster health --address "127.0.0.1:$(temporal_node_port "$1" frontend)" "${flags[@]}" >/dev/null 2>&1
}

# The namespace is visible to node N's frontend (its namespace cache refreshes every ~10s).
_temporal_node_has_namespace() {
  local flags
  mapfile -t flags < <(temporal_tls_flags)
  "$TEMPORAL_BIN" workflow list --limit 1 --namespace "$2" --address "127.0.0.1:$(temporal_node_port "$1" frontend)" "${flags[@]}" >/dev/null 2>&1
}

# temporal_cluster_members: the live rows of cluster_membership (heartbeat in the last 20 s):
# role, address:membership-port, session start, last heartbeat.
temporal_cluster_members() {
  _temporal_psql "$CLUSTER_DB_NAME" -tA -F ' ' -c "
    select case role when 1 then 'frontend' when 2 then 'history' when 3 then 'matching' when 4 then 'worker'
                     when 5 then 'internal-frontend' else role::text end,
           rpc_address || ':' || rpc_port, to_char(session_start, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
           to_char(last_heartbeat, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
    from cluster_membership
    where last_heartbeat > (now() at time zone 'utc') - interval '20 seconds'
    order by rpc_port"
}

_temporal_cluster_metadata_exists() {
  [[ $(_temporal_psql "$CLUSTER_DB_NAME" -tAc "select count(*) from cluster_metadata_info" 2>/dev/null) -gt 0 ]]
}

write_temporal_dynamic_config() {
  _write_if_changed "$CLUSTER_DIR/dynamicconfig.yaml" 644 <<'EOF'
# Dynamic config of cluster mode's Temporal nodes (read every 10 s; no restart needed).
# Eager activity execution, as the dev stack sets it (see docker/temporal-dynamic-config.yaml).
system.enableActivityEagerExecution:
  - value: true
# The dev server's visibility rate (its default is 10 per second per frontend): Berth's
# tests and the UI list workflows often.
frontend.namespaceRPS.visibility:
  - value: 100
EOF
}

# _write_if_changed FILE MODE < CONTENT: replaces FILE only when CONTENT differs; true when it did.
_write_if_changed() {
  local file=$1 mode=$2 content
  content=$(cat)
  [[ -f $file && $(cat "$file") == "$content" ]] && return 1
  mkdir -p "$(dirname "$file")"
  (umask 077 && printf '%s\n' "$content" >"$file.new")
  chmod "$mode" "$file.new"
  mv "$file.new" "$file"
}

# The static config of node N (it holds the database password: mode 600).
_temporal_node_config() {
  local n=$1 tls s
  tls=$(cluster_tls_dir)
  cat <<EOF
# Generated by scripts/cluster-temporal.sh: node $n of cluster mode's Temporal.
log:
  stdout: true
  level: $CLUSTER_LOG_LEVEL
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: $CLUSTER_HISTORY_SHARDS
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: "$CLUSTER_DB_NAME"
        connectAddr: "$CLUSTER_PG_HOST:$CLUSTER_PG_PORT"
        connectProtocol: tcp
        user: "$CLUSTER_DB_USER"
        password: "$(temporal_db_password)"
        maxConns: $CLUSTER_DB_MAX_CONNS
        maxIdleConns: $CLUSTER_DB_MAX_CONNS
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: "$CLUSTER_VISIBILITY_DB_NAME"
        connectAddr: "$CLUSTER_PG_HOST:$CLUSTER_PG_PORT"
        connectProtocol: tcp
        user: "$CLUSTER_DB_USER"
        password: "$(temporal_db_password)"
        maxConns: $CLUSTER_VISIBILITY_DB_MAX_CONNS
        maxIdleConns: $CLUSTER_VISIBILITY_DB_MAX_CONNS
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      listenAddress: 127.0.0.1:$(temporal_node_port "$n" metrics)
  tls:
    refreshInterval: 1m
    internode:
      server:
        certFile: $tls/temporal-internode.pem
        keyFile: $tls/temporal-internode-key.pem
        requireClientAuth: true
        clientCaFiles: [$tls/ca.pem]
      client:
        serverName: temporal-internode.berth.internal
        rootCaFiles: [$tls/ca.pem]
    frontend:
      server:
        certFile: $tls/temporal-frontend.pem
        keyFile: $tls/temporal-frontend-key.pem
        requireClientAuth: true
        clientCaFiles: [$tls/ca.pem]
      client:
        serverName: $CLUSTER_TLS_SERVER_NAME
        rootCaFiles: [$tls/ca.pem]
    # The worker service's system workers dial the frontends (found through membership).
    systemWorker:
      certFile: $tls/temporal-internode.pem
      keyFile: $tls/temporal-internode-key.pem
      client:
        serverName: $CLUSTER_TLS_SERVER_NAME
        rootCaFiles: [$tls/ca.pem]
services:
EOF
  for s in frontend history matching worker; do
    printf '  %s:\n    rpc:\n      bindOnIP: 127.0.0.1\n      grpcPort: %s\n      membershipPort: %s\n' \
      "$s" "$(temporal_node_port "$n" "$s")" "$(temporal_node_port "$n" "$s" membership)"
    [[ $s == frontend ]] && printf '      httpPort: %s\n' "$(temporal_node_port "$n" "$s" http)"
  done
  cat <<EOF
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:$CLUSTER_FRONT_PORT
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $CLUSTER_DIR/dynamicconfig.yaml
  pollInterval: 10s
EOF
}

# Starts node N unless it is running; a running node whose config changed is restarted
# (one node at a time: the other keeps serving).
_start_temporal_node_bg() {
  local n=$1 dir=$CLUSTER_DIR/node$1 changed=''
  [[ -s $CLUSTER_DIR/temporal-db.password ]] || die "no Temporal database password in $CLUSTER_DIR (run setup_temporal_db)"
  _temporal_node_config "$n" | _write_if_changed "$dir/config/node.yaml" 600 && changed=1
  if pid_alive "$RUN/temporal-node$n.pid"; then
    [[ -z $changed ]] && return 0
    log "Temporal node $n: config changed; restarting it"
    stop_pidfile "temporal-node$n"
  fi
  log "starting Temporal node $n (frontend 127.0.0.1:$(temporal_node_port "$n" frontend))"
  start_bg "temporal-node$n" "$TEMPORAL_SERVER_BIN" --root / --config "$dir/config" --env node --allow-no-auth start
}

start_temporal_node() {
  ensure_temporal_certs
  write_temporal_dynamic_config || true
  _start_temporal_node_bg "$1"
  wait_for "Temporal node $1" 120 temporal_node_up "$1"
}

# stop_temporal_node N [KILL]: stops node N (SIGTERM; with KILL, SIGKILL at once: a crash).
stop_temporal_node() {
  local n=$1 file=$RUN/temporal-node$1.pid
  if [[ ${2:-} == KILL ]] && pid_alive "$file"; then
    local pid; pid=$(cat "$file")
    kill -KILL "$pid" 2>/dev/null || true
    # Reaped here when this shell started it (else bash reports the kill later).
    wait "$pid" 2>/dev/null || true
  fi
  stop_pidfile "temporal-node$n"
}

# ---------------------------------------------------------------- haproxy
_temporal_lb_config() {
  local ip n
  cat <<EOF
# Generated by scripts/cluster-temporal.sh: TCP load balancing over the Temporal frontends
# (TLS passes through: clients' certificates reach the frontends).
global
  log stderr format raw daemon warning
  nbthread 1
  maxconn 4000
  # After a reload, the old process closes what it still carries after 30 s (gRPC
  # connections live long); their clients reconnect to the new one.
  hard-stop-after 30s
defaults
  mode tcp
  log global
  timeout connect 3s
  # gRPC long polls last about 70 s, and clients ping idle connections.
  timeout client 10m
  timeout server 10m
  retries 2
  option redispatch
frontend temporal
  bind 127.0.0.1:$CLUSTER_FRONT_PORT
EOF
  for ip in $(cluster_gateway_ips); do
    address_exists "$ip" && printf '  bind %s:%s\n' "$ip" "$CLUSTER_FRONT_PORT"
  done
  cat <<EOF
  default_backend temporal-frontends
backend temporal-frontends
  balance leastconn
  # A node is up while its frontend completes a TLS handshake with a client certificate.
  default-server check inter 2s fall 2 rise 2 on-marked-down shutdown-sessions check-ssl verify required ca-file $(cluster_tls_dir)/ca.pem crt $CLUSTER_DIR/haproxy-client.pem check-sni $CLUSTER_TLS_SERVER_NAME verifyhost $CLUSTER_TLS_SERVER_NAME
EOF
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
    printf '  server node%s 127.0.0.1:%s\n' "$n" "$(temporal_node_port "$n" frontend)"
  done
}

_temporal_lb_up() { pid_alive "$RUN/temporal-lb.pid"; }

# Starts haproxy, or reloads it (the new process takes over from the old one) when its config
# changed, e.g. a gateway address appeared.
start_temporal_lb() {
  local tls cfg=$CLUSTER_DIR/haproxy.cfg changed='' old=()
  tls=$(cluster_tls_dir)
  ensure_haproxy
  cat "$tls/temporal-client.pem" "$tls/temporal-client-key.pem" | _write_if_changed "$CLUSTER_DIR/haproxy-client.pem" 600 && changed=1
  _temporal_lb_config | _write_if_changed "$cfg" 644 && changed=1
  if _temporal_lb_up; then
    [[ -z $changed ]] && return 0
    old=(-sf "$(cat "$RUN/temporal-lb.pid")")
    log "haproxy: config changed; reloading it"
  fi
  haproxy -c -q -f "$cfg" >>"$LOGS/temporal-lb.log" 2>&1 || die "haproxy refuses $cfg (see $LOGS/temporal-lb.log)"
  start_bg temporal-lb haproxy -db -f "$cfg" "${old[@]}"
  wait_for "haproxy on 127.0.0.1:$CLUSTER_FRONT_PORT" 30 temporal_cluster_up
}

# ---------------------------------------------------------------- the UI server
_temporal_ui_config() {
  local tls; tls=$(cluster_tls_dir)
  cat <<EOF
# Generated by scripts/cluster-temporal.sh: Temporal's Web UI server against the cluster.
temporalGrpcAddress: 127.0.0.1:$CLUSTER_FRONT_PORT
host: 127.0.0.1
port: $CLUSTER_UI_PORT
enableUi: true
defaultNamespace: default
refreshInterval: 1m
notifyOnNewVersion: false
disableNewsFetch: true
cors:
  cookieInsecure: true
  allowOrigins:
    - http://127.0.0.1:$CLUSTER_UI_PORT
    - http://localhost:$CLUSTER_UI_PORT
tls:
  caFile: $tls/ca.pem
  certFile: $tls/temporal-client.pem
  keyFile: $tls/temporal-client-key.pem
  serverName: $CLUSTER_TLS_SERVER_NAME
  enableHostVerification: true
EOF
}

temporal_ui_up() { curl -fsS -o /dev/null "http://127.0.0.1:$CLUSTER_UI_PORT/"; }

start_temporal_ui() {
  local changed=''
  _temporal_ui_config | _write_if_changed "$CLUSTER_DIR/ui/config/base.yaml" 644 && changed=1
  if pid_alive "$RUN/temporal-ui-server.pid"; then
    [[ -z $changed ]] && return 0
    log "Temporal UI server: config changed; restarting it"
    stop_pidfile temporal-ui-server
  fi
  start_bg temporal-ui-server "$TEMPORAL_UI_SERVER_BIN" --root / --config "$CLUSTER_DIR/ui/config" --env berth start
  wait_for "Temporal UI server on 127.0.0.1:$CLUSTER_UI_PORT" 60 temporal_ui_up
}

# ---------------------------------------------------------------- the cluster
# _temporal_node_cli N ARGS...: the CLI against node N's own frontend (not through haproxy).
_temporal_node_cli() {
  local n=$1 flags; shift
  mapfile -t flags < <(temporal_tls_flags)
  "$TEMPORAL_BIN" "$@" --address "127.0.0.1:$(temporal_node_port "$n" frontend)" "${flags[@]}"
}

# Berth's search attributes (stack.sh's SEARCH_ATTRIBUTES) in namespace NS, and served by every
# node's frontend (their namespace caches refresh every ~10s): a workflow started through a node
# that does not know them yet would be refused.
ensure_temporal_search_attributes() {
  local ns=$1 n
  register_search_attributes "$ns" temporal_cli
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
    wait_for "search attributes in $ns on Temporal node $n" 60 has_search_attributes "$ns" _temporal_node_cli "$n"
  done
}

ensure_temporal_namespace() {
  local ns=$1 n
  temporal_cli operator namespace describe --namespace "$ns" >/dev/null 2>&1 \
    || temporal_cli operator namespace create --namespace "$ns" --retention "$CLUSTER_NAMESPACE_RETENTION" >>"$LOGS/temporal-cli.log" 2>&1 \
    || temporal_cli operator namespace describe --namespace "$ns" >/dev/null 2>&1 \
    || die "could not register the Temporal namespace $ns (see $LOGS/temporal-cli.log)"
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
    wait_for "namespace $ns on Temporal node $n" 60 _temporal_node_has_namespace "$n" "$ns"
  done
}

# What Berth's processes need to connect (read by stack.sh).
write_temporal_env() {
  local tls; tls=$(cluster_tls_dir)
  _write_if_changed "$CLUSTER_DIR/temporal.env" 644 <<EOF || true
BERTH_TEMPORAL_ADDRESS=127.0.0.1:$CLUSTER_FRONT_PORT
BERTH_TEMPORAL_TLS_CA=$tls/ca.pem
BERTH_TEMPORAL_TLS_CERT=$tls/temporal-client.pem
BERTH_TEMPORAL_TLS_KEY=$tls/temporal-client-key.pem
BERTH_TEMPORAL_TLS_SERVER_NAME=$CLUSTER_TLS_SERVER_NAME
EOF
}

start_temporal_cluster() {
  local n
  mkdir -p "$CLUSTER_DIR" "$LOGS" "$RUN"
  ensure_temporal_certs
  write_temporal_dynamic_config || true
  # Both nodes start at once, but on a new database only once the first one has recorded
  # the cluster's metadata: the second to try fails on the duplicate key and exits.
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
    _start_temporal_node_bg "$n"
    wait_for "Temporal cluster metadata" 60 _temporal_cluster_metadata_exists
  done
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do wait_for "Temporal node $n" 120 temporal_node_up "$n"; done
  start_temporal_lb
  ensure_temporal_namespace default
  ensure_temporal_search_attributes default
  write_temporal_env
  start_temporal_ui
}

stop_temporal_cluster() {
  local n pids=()
  stop_pidfile temporal-ui-server
  stop_pidfile temporal-lb
  # Both nodes at once: each takes a few seconds to hand its shards over.
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
    stop_temporal_node "$n" &
    pids+=($!)
  done
  wait "${pids[@]}"
}

# Rows for stack.sh's status, in its format.
cluster_temporal_status_rows() {
  local n
  _row() { printf '%-16s %-60s %s\n' "$1" "$2" "$("${@:3}" >/dev/null 2>&1 && echo up || echo down)"; }
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do
    _row "temporal-node$n" "127.0.0.1:$(temporal_node_port "$n" frontend) (mTLS)" temporal_node_up "$n"
  done
  _row temporal-lb "127.0.0.1:$CLUSTER_FRONT_PORT (haproxy, mTLS to the nodes)" temporal_cluster_up
  _row temporal-ui "http://127.0.0.1:$CLUSTER_UI_PORT" temporal_ui_up
}
