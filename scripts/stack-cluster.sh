# shellcheck shell=bash
# The cluster mode of the stack (`scripts/stack.sh up:cluster`), sourced by scripts/stack.sh:
# the production topology on one machine, each part reached over the network as it would be
# on machines of their own.
#
#   - Temporal: two server nodes on PostgreSQL behind haproxy, TLS (scripts/cluster-temporal.sh),
#     and the Web UI server on 8233.
#   - host-a: a Docker host on this machine (its daemon over a local socket).
#   - host-c: a Docker host on "another machine": a network namespace joined to this one by a
#     veth pair (GATEWAY_IP here, HOST_C_IP there). Its dockerd and its host worker run inside;
#     the worker drives the daemon over TCP with mutual TLS and reaches PostgreSQL, Temporal,
#     MinIO and the registries at GATEWAY_IP only (a gateway haproxy forwards those ports to
#     the services on loopback).
#   - The API reaches both host workers' log and stats endpoints over HTTPS, verifying their
#     certificates against the stack's CA.
#   - Berth's own data in the database berth_cluster: the development stack's records name
#     workflows its dev server holds, which the cluster does not.

CLUSTER_NS=berth-host-c
GATEWAY_IP=10.213.0.1
HOST_C_IP=10.213.0.2
VETH_ROOT=berth-c0
VETH_NS=berth-c1
HOST_C_BRIDGE="berth-c 172.27.0.1/16"
HOST_C_POOL=10.214.0.0/16
DOCKER_TLS_PORT=2376
STREAMS_TLS_PORT=9443
# shellcheck disable=SC2034 # read by stack.sh (mode_procs)
CLUSTER_APP_PROCS=(api worker-control worker-host-a worker-host-c)
# Ports of this machine that host-c reaches at GATEWAY_IP: PostgreSQL, MinIO, the registries
# (Temporal's 7233 is bound there by the Temporal load balancer itself).
GATEWAY_PORTS=(5432 9000 5000 5001)

export CLUSTER_DIR=${CLUSTER_DIR:-$STATE/cluster}
export CLUSTER_GATEWAY_IPS=$GATEWAY_IP
# shellcheck source=scripts/cluster-temporal.sh
. "$ROOT/scripts/cluster-temporal.sh"

MODE_FILE=$STATE/mode
stack_mode() { cat "$MODE_FILE" 2>/dev/null || echo dev; }

in_ns() { ip netns exec "$CLUSTER_NS" "$@"; }

# ---------------------------------------------------------------- host-c's network
ensure_netns() {
  ip netns list | grep -qw "$CLUSTER_NS" || ip netns add "$CLUSTER_NS"
  if ! ip link show "$VETH_ROOT" >/dev/null 2>&1; then
    in_ns ip link del "$VETH_NS" 2>/dev/null || true
    ip link add "$VETH_ROOT" type veth peer name "$VETH_NS"
    ip link set "$VETH_NS" netns "$CLUSTER_NS"
    ip addr add "$GATEWAY_IP/24" dev "$VETH_ROOT"
    in_ns ip addr add "$HOST_C_IP/24" dev "$VETH_NS"
  fi
  # Up again after a test that cut the link and stopped before restoring it.
  ip link set "$VETH_ROOT" up
  in_ns ip link set "$VETH_NS" up
  in_ns ip link set lo up
}

remove_netns() {
  ip link del "$VETH_ROOT" 2>/dev/null || true
  if ip netns list | grep -qw "$CLUSTER_NS"; then ip netns del "$CLUSTER_NS"; fi
}

# ---------------------------------------------------------------- certificates
ensure_cluster_certs() {
  ensure_ca
  ensure_temporal_certs
  issue_cert docker-host-c server "IP:$HOST_C_IP,DNS:host-c.berth.internal"
  issue_cert docker-client client ""
  issue_cert streams-host-a server "IP:127.0.0.1,DNS:localhost"
  issue_cert streams-host-c server "IP:$HOST_C_IP,DNS:host-c.berth.internal"
}

# ---------------------------------------------------------------- the gateway
gateway_up() { pid_alive "$RUN/gateway.pid"; }

start_gateway() {
  local cfg=$CLUSTER_DIR/gateway.cfg port
  {
    printf 'global\n  log stderr format raw local0 warning\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\n'
    for port in "${GATEWAY_PORTS[@]}"; do
      printf 'listen gw-%s\n  bind %s:%s\n  server local 127.0.0.1:%s\n\n' "$port" "$GATEWAY_IP" "$port" "$port"
    done
  } >"$cfg.new"
  if gateway_up && cmp -s "$cfg" "$cfg.new"; then rm -f "$cfg.new"; return 0; fi
  mv "$cfg.new" "$cfg"
  stop_pidfile gateway
  start_bg gateway haproxy -db -f "$cfg"
  wait_for "the gateway ($GATEWAY_IP)" 30 bash -c "exec 3<>/dev/tcp/$GATEWAY_IP/5432"
}

# ---------------------------------------------------------------- host-c's Docker daemon
docker_c_up() { host_docker host-c version; }

start_docker_host_c() {
  local dir=$STATE/docker/host-c tls=$CLUSTER_DIR/tls config bridge cidr
  read -r bridge cidr <<<"$HOST_C_BRIDGE"
  config=$(printf '{"deprecated-key-path": "%s/key.json", "default-address-pools": [{"base": "%s", "size": %s}], "insecure-registries": ["%s:5000", "%s:5001"], "tlsverify": true, "tlscacert": "%s/ca.pem", "tlscert": "%s/docker-host-c.pem", "tlskey": "%s/docker-host-c-key.pem"}' \
    "$dir" "$HOST_C_POOL" "$USER_SUBNET_SIZE" "$GATEWAY_IP" "$GATEWAY_IP" "$tls" "$tls" "$tls")
  if docker_c_up >/dev/null 2>&1; then
    [[ -f $dir/daemon.json && $(cat "$dir/daemon.json") == "$config" ]] && return 0
    log "Docker daemon host-c: daemon.json changed; restarting it"
    stop_pidfile dockerd-host-c
  fi
  mkdir -p "$dir/data" "$dir/exec"
  in_ns ip link show "$bridge" >/dev/null 2>&1 || { in_ns ip link add "$bridge" type bridge && in_ns ip addr add "$cidr" dev "$bridge"; }
  in_ns ip link set "$bridge" up
  printf '%s\n' "$config" >"$dir/daemon.json"
  rm -f "$dir/docker.pid" "$(docker_sock host-c)"
  # The local socket is for the stack and the tests on this machine; Berth's host worker uses TCP.
  # nsenter --net, not `ip netns exec`: that one remounts /sys for the namespace, which hides
  # the cgroup mounts dockerd needs.
  start_bg dockerd-host-c nsenter --net="/run/netns/$CLUSTER_NS" dockerd --config-file "$dir/daemon.json" \
    --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$(docker_sock host-c)" -H "tcp://$HOST_C_IP:$DOCKER_TLS_PORT" \
    --pidfile "$dir/docker.pid" --bridge "$bridge"
  wait_for "Docker daemon host-c" 90 docker_c_up
}

# ---------------------------------------------------------------- settings
# The cluster's settings over berth.env's: read after it by load_env in cluster mode.
write_cluster_env() {
  local tls=$CLUSTER_DIR/tls db_url
  db_url=${BERTH_DATABASE_URL%/*}/berth_cluster
  {
    echo "# Generated by scripts/stack.sh up:cluster: the cluster mode's settings over berth.env's."
    echo "BERTH_DATABASE_URL=$db_url"
    cat "$CLUSTER_DIR/temporal.env"
    echo "BERTH_STREAMS_TLS_CA=$tls/ca.pem"
    # A cut link shows within seconds (the tests cut host-c's).
    echo "BERTH_HOST_HEARTBEAT_INTERVAL=2s"
    echo "BERTH_HOST_STALE_AFTER=10s"
    echo "BERTH_ALLOWED_REGISTRIES=docker.io,$REGISTRY,$AUTH_REGISTRY,$GATEWAY_IP:5000,$GATEWAY_IP:5001"
    echo "BERTH_INTERNAL_REGISTRIES=$REGISTRY,$AUTH_REGISTRY,$GATEWAY_IP:5000,$GATEWAY_IP:5001"
  } >"$CLUSTER_DIR/cluster.env.new"
  mv "$CLUSTER_DIR/cluster.env.new" "$CLUSTER_DIR/cluster.env"
}

ensure_cluster_database() {
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 postgres >/dev/null <<'EOF'
SELECT 'CREATE DATABASE berth_cluster OWNER berth' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'berth_cluster')\gexec
EOF
}

# host-c's registry credentials: the htpasswd registry as host-c reaches it.
cluster_registry_credentials_json() {
  printf '{"%s":{"username":"%s","password":"%s"},"%s:5001":{"username":"%s","password":"%s"}}' \
    "$AUTH_REGISTRY" "$BERTH_REGISTRY_AUTH_USERNAME" "$BERTH_REGISTRY_AUTH_PASSWORD" \
    "$GATEWAY_IP" "$BERTH_REGISTRY_AUTH_USERNAME" "$BERTH_REGISTRY_AUTH_PASSWORD"
}

# Starts one of the cluster mode's API and workers.
start_cluster_proc() {
  local p=$1 tls=$CLUSTER_DIR/tls
  cd "$ROOT" || die "no $ROOT"
  case $p in
    api) start_bg api node --import tsx api/server.ts ;;
    worker-control) BERTH_METRICS_PORT=$CONTROL_METRICS_PORT start_bg worker-control node --import tsx workers/control.ts ;;
    worker-host-a)
      ensure_host_js
      BERTH_HOST_ID=host-a BERTH_DOCKER_HOST="unix://$(docker_sock host-a)" BERTH_PUBLISH_IP=127.0.0.1 \
        BERTH_STREAMS_HOST=127.0.0.1 BERTH_STREAMS_TLS_CERT=$tls/streams-host-a.pem BERTH_STREAMS_TLS_KEY=$tls/streams-host-a-key.pem \
        BERTH_METRICS_PORT=9471 BERTH_REGISTRY_CREDENTIALS=$(registry_credentials_json) \
        start_bg worker-host-a sh workers/host-worker.sh ;;
    worker-host-c)
      # Inside host-c's namespace, every address is the gateway's: nothing on this machine's loopback.
      ensure_host_js
      BERTH_HOST_ID=host-c BERTH_DOCKER_HOST="tcp://$HOST_C_IP:$DOCKER_TLS_PORT" \
        BERTH_DOCKER_TLS_CA=$tls/ca.pem BERTH_DOCKER_TLS_CERT=$tls/docker-client.pem BERTH_DOCKER_TLS_KEY=$tls/docker-client-key.pem \
        BERTH_DATABASE_URL=$(sed -E "s#@127\.0\.0\.1:#@$GATEWAY_IP:#" <<<"$BERTH_DATABASE_URL") \
        BERTH_TEMPORAL_ADDRESS=$GATEWAY_IP:7233 \
        BERTH_MINIO_ENDPOINT=http://$GATEWAY_IP:9000 \
        BERTH_PUBLISH_IP=$HOST_C_IP \
        BERTH_STREAMS_HOST=$HOST_C_IP BERTH_STREAMS_PORT=$STREAMS_TLS_PORT \
        BERTH_STREAMS_TLS_CERT=$tls/streams-host-c.pem BERTH_STREAMS_TLS_KEY=$tls/streams-host-c-key.pem \
        BERTH_METRICS_HOST=$HOST_C_IP BERTH_METRICS_PORT=9473 \
        BERTH_REGISTRY_CREDENTIALS=$(cluster_registry_credentials_json) \
        start_bg worker-host-c ip netns exec "$CLUSTER_NS" sh workers/host-worker.sh ;;
    *) die "no such process in cluster mode: $p" ;;
  esac
}

# What Prometheus scrapes in cluster mode (see dev_scrape_targets): host-c's worker at its own
# address in the namespace, each Temporal node's /metrics.
cluster_scrape_targets() {
  local n
  echo "berth-api 127.0.0.1:${BERTH_API_PORT:-8080} api"
  echo "berth-worker 127.0.0.1:$CONTROL_METRICS_PORT worker-control"
  echo "berth-worker 127.0.0.1:9471 worker-host-a"
  echo "berth-worker $HOST_C_IP:9473 worker-host-c"
  for n in "${TEMPORAL_CLUSTER_NODES[@]}"; do echo "temporal 127.0.0.1:$(temporal_node_port "$n" metrics) temporal-node$n"; done
}

cluster_hosts_up() {
  [[ $(psql "$BERTH_DATABASE_URL" -tAc "select count(*) from hosts where id in ('host-a', 'host-c') and last_heartbeat_at > now() - interval '20 seconds'" 2>/dev/null) -ge 2 ]]
}

# ---------------------------------------------------------------- commands
cmd_up_cluster() {
  local started=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$RUN" "$TOOLS/bin" "$CLUSTER_DIR"
  if [[ $(stack_mode) != cluster ]]; then
    log "stopping the development stack's Temporal, API and workers for the cluster"
    stop_app
    stop_pidfile temporal
  fi
  echo cluster >"$MODE_FILE"
  install_packages
  ensure_haproxy
  ensure_env_file
  load_env
  build_tools & local builder=$!
  build_cluster_tools & local cluster_builder=$!
  ensure_node_modules
  ensure_console & local console_builder=$!
  start_postgres
  ensure_netns
  ensure_cluster_certs
  local spec id bridge cidr
  for spec in "${HOSTS[@]}"; do
    read -r id bridge cidr _ <<<"$spec"
    [[ $id == host-a ]] && start_docker_host "$id" "$bridge" "$cidr"
  done
  start_docker_host_c
  start_registry registry "$REGISTRY"
  start_registry registry-auth "$AUTH_REGISTRY" auth
  wait "$builder" || die "building the Go tools failed"
  seed_images
  start_minio
  start_gateway
  wait "$cluster_builder" || die "building Temporal's server and UI failed"
  setup_temporal_db
  start_temporal_cluster
  ensure_cluster_database
  write_cluster_env
  load_env
  wait "$console_builder" || die "building the web console failed (see $LOGS/web-build.log)"
  start_app
  start_prometheus
  log "cluster up in $((SECONDS - started))s"
  cmd_status
}

stop_cluster() {
  stop_app
  stop_temporal_cluster
  stop_pidfile gateway
  stop_pidfile dockerd-host-c
  remove_netns
}

cluster_status_rows() {
  cluster_temporal_status_rows
  row "gateway" "$GATEWAY_IP:{${GATEWAY_PORTS[*]}} -> 127.0.0.1" gateway_up
  row "docker host-c" "tcp://$HOST_C_IP:$DOCKER_TLS_PORT (netns $CLUSTER_NS, mTLS)" docker_c_up
}
