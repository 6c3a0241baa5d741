#!/usr/bin/env bash
# Berth's native stack on 127.0.0.1: PostgreSQL 15, two Docker daemons (host-a, host-b),
# a local registry seeded with busybox-static images, the Temporal dev server with its
# Web UI, MinIO, then migrations, the API, the control worker and one host worker per
# Docker daemon, and Prometheus scraping them (ops/prometheus/).
#
#   scripts/stack.sh up          install what is missing, start what is not running (idempotent)
#   scripts/stack.sh up:cluster  the production topology instead (scripts/stack-cluster.sh)
#   scripts/stack.sh down        stop everything, whichever mode runs (data is kept)
#   scripts/stack.sh status      the mode, each component, its address, up or down
#   scripts/stack.sh env         print the settings the stack's processes run with
#
# State (data, sockets, logs, generated secrets) lives in $BERTH_STATE_DIR
# (default ~/.local/state/berth); built Go binaries and Go caches in $BERTH_TOOLS_DIR
# (default ~/.cache/berth; Go keeps its own caches in ~/go and ~/.cache/go-build), outside
# the repository, and are built once per pinned version.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${BERTH_STATE_DIR:-$HOME/.local/state/berth}
TOOLS=${BERTH_TOOLS_DIR:-$HOME/.cache/berth}
ENV_FILE=$STATE/berth.env
LOGS=$STATE/logs
RUN=$STATE/run

TEMPORAL_VERSION=v1.5.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TEMPORAL_BIN=$TOOLS/bin/temporal-$TEMPORAL_VERSION
MINIO_BIN=$TOOLS/bin/minio-$MINIO_VERSION

# Docker hosts: id, bridge, bridge address, the loopback address its containers publish on
# (both daemons share this machine: distinct addresses keep their host ports apart).
HOSTS=("host-a berth-a 172.28.0.1/16 127.0.0.1" "host-b berth-b 172.29.0.1/16 127.0.0.2")
# Each daemon's pool for users' networks (one network per user with containers there): /27
# subnets (29 containers each) out of a /16 of its own, so 2048 users' networks per host.
# A subnet must hold BERTH_MAX_CONTAINERS_PER_USER containers (tests raise it to 20).
# Distinct per host and clear of the bridges above and of the machine's own addresses.
declare -A ADDRESS_POOLS=([host-a]=10.210.0.0/16 [host-b]=10.211.0.0/16)
# Where each worker serves /healthz, /readyz and /metrics (workers/ops-server.ts): the control worker 9470.
declare -A METRICS_PORTS=([host-a]=9471 [host-b]=9472)
CONTROL_METRICS_PORT=9470
# The Temporal dev server's /metrics (start-dev --metrics-port; otherwise a random port).
TEMPORAL_METRICS_PORT=7235
# Prometheus (Debian's package, run by the stack: ops/prometheus/), its data in $STATE/prometheus.
PROMETHEUS_ADDR=127.0.0.1:9090
USER_SUBNET_SIZE=27
# Berth's custom search attributes (core/search-attributes.ts), all Keyword: whichever Temporal
# runs has them before Berth's processes start a workflow (a start naming an unknown one fails).
SEARCH_ATTRIBUTES=(BerthUserId BerthHostId BerthResourceId)
REGISTRY=127.0.0.1:5000
AUTH_REGISTRY=127.0.0.1:5001
PG_PORT=5432

export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up within ${seconds}s (logs: $LOGS)"
    sleep 0.5
  done
}

# A pid file's process is alive: it exists and is not a zombie waiting to be reaped.
pid_alive() {
  [[ -f $1 ]] || return 1
  local pid; pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# start_bg NAME COMMAND...: runs COMMAND detached, pid in $RUN/NAME.pid, output in $LOGS/NAME.log.
# It does not inherit fd 9, the stack lock (with_lock): else it would hold the lock for its lifetime.
# A process's log is appended to across restarts; one past 100 MB is kept as NAME.log.1 (the one
# before it dropped) when the process starts again, so that logs never grow without bound.
LOG_ROTATE_BYTES=$((100 * 1024 * 1024))
start_bg() {
  local name=$1; shift
  local file=$LOGS/$name.log
  if [[ -f $file ]] && (($(stat -c %s "$file") > LOG_ROTATE_BYTES)); then mv -f "$file" "$file.1"; fi
  nohup setsid "$@" >>"$file" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}

stop_pidfile() {
  local name=$1 file=$RUN/$1.pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  local pid; pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 30s; killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$file"
}

# ---------------------------------------------------------------- packages and tools
install_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null && [[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql)
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v curl >/dev/null || missing+=(curl)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v openssl >/dev/null || missing+=(openssl) # the TLS tests make throwaway certificates with it
  [[ -x /usr/bin/chromium ]] || missing+=(chromium) # the console's browser tests (test/browser) drive it headless
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei) # Chinese glyphs for it (the console speaks zh-CN too)
  dpkg -s libjemalloc2 >/dev/null 2>&1 || missing+=(libjemalloc2) # the host workers' allocator (workers/host-worker.sh)
  local prometheus=''
  command -v prometheus >/dev/null && command -v promtool >/dev/null || prometheus=prometheus
  ((${#missing[@]} == 0)) && [[ -z $prometheus ]] && return 0
  log "installing Debian packages: ${missing[*]} $prometheus"
  apt-get update -qq >"$LOGS/apt.log" 2>&1
  if ((${#missing[@]} > 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$LOGS/apt.log" 2>&1 \
      || die "apt-get install failed (see $LOGS/apt.log)"
  fi
  if [[ -n $prometheus ]]; then
    # Without the node exporter it recommends (a service of its own on :9100).
    quiet_packaged_prometheus
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >>"$LOGS/apt.log" 2>&1 \
      || die "apt-get install prometheus failed (see $LOGS/apt.log)"
    quiet_packaged_prometheus
  fi
}

# Debian's prometheus package comes with a service of its own on :9090 (/etc/prometheus/); the stack
# runs its own Prometheus there instead (start_prometheus). Under systemd the packaged unit is masked
# before the install, so that it never starts; without systemd, its init script is stopped and
# taken out of the boot sequence after the install.
quiet_packaged_prometheus() {
  if [[ -d /run/systemd/system ]]; then
    systemctl mask --now prometheus.service >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
}

# go_tool BIN MODULE@VERSION: builds once into $TOOLS/bin; a no-op when BIN exists.
go_tool() {
  local bin=$1 module=$2
  [[ -x $bin ]] && return 0
  command -v go >/dev/null || die "Go is required to build $module"
  local tmp; tmp=$(mktemp -d "$TOOLS/build.XXXXXX")
  log "building $module (once; cached in $TOOLS)"
  (cd "$tmp" && GOBIN=$tmp/bin GOFLAGS=-trimpath go install "$module") >"$LOGS/build-$(basename "$bin").log" 2>&1 \
    || { rm -rf "$tmp"; die "go install $module failed (see $LOGS/build-$(basename "$bin").log)"; }
  mv "$tmp/bin/"* "$bin"
  rm -rf "$tmp"
}

build_tools() {
  go_tool "$TEMPORAL_BIN" "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION"
  go_tool "$MINIO_BIN" "github.com/minio/minio@$MINIO_VERSION"
  ln -sf "$TEMPORAL_BIN" "$TOOLS/bin/temporal"
}

ensure_node_modules() {
  local stamp=$ROOT/node_modules/.berth-lock
  if [[ ! -f $stamp ]] || ! cmp -s "$ROOT/package-lock.json" "$stamp"; then
    # npm install, not npm ci: the registry here lacks some of @swc/core's optional
    # platform packages, which npm ci counts as a lockfile mismatch. The lockfile still pins.
    log "installing npm dependencies"
    (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error) >"$LOGS/npm.log" 2>&1 || die "npm install failed (see $LOGS/npm.log)"
    cp "$ROOT/package-lock.json" "$stamp"
  fi
}

# The web console (web/, served by the API at /): built into web/dist by `npm run web:build`
# when web/dist has no index.html or was built from other sources. The stamp (a hash of web/'s
# files and the lockfile, like the app's code hash) lives in web/dist, so a build made by hand
# from other sources, or a deleted web/dist, is built again. The API reads web/dist at each
# request: a new build needs no restart.
WEB_STAMP=.berth-web-hash
web_hash() {
  (cd "$ROOT" && find web package-lock.json \( -path web/dist -o -path web/node_modules \) -prune -o -type f -print0 2>/dev/null \
    | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40)
}

ensure_console() {
  [[ -d $ROOT/web ]] || return 0 # a checkout without the console
  local dist=$ROOT/web/dist hash
  hash=$(web_hash)
  [[ -f $dist/index.html && -f $dist/$WEB_STAMP && $(cat "$dist/$WEB_STAMP") == "$hash" ]] && return 0
  log "building the web console (npm run web:build)"
  (cd "$ROOT" && npm run web:build) >"$LOGS/web-build.log" 2>&1 || die "building the web console failed (see $LOGS/web-build.log)"
  [[ -f $dist/index.html ]] || die "npm run web:build wrote no web/dist/index.html (see $LOGS/web-build.log)"
  echo "$hash" >"$dist/$WEB_STAMP"
}

# The host workers run the JavaScript `npm run build:js` writes under dist/js/ (workers/host-worker.sh
# says why: their memory). Built before a host worker starts when dist/js was built from other
# sources (or not at all), by the app's code hash kept in dist/js/.berth-src-hash; a build takes
# about a second (esbuild, the transform tsx applies in memory).
JS_STAMP=.berth-src-hash
ensure_host_js() {
  local dist=$ROOT/dist/js hash
  hash=$(code_hash)
  [[ -f $dist/workers/host.js && -f $dist/$JS_STAMP && $(cat "$dist/$JS_STAMP") == "$hash" ]] && return 0
  (cd "$ROOT" && npm run build:js) >"$LOGS/build-js.log" 2>&1 || die "npm run build:js failed (see $LOGS/build-js.log)"
  echo "$hash" >"$dist/$JS_STAMP"
}

# ---------------------------------------------------------------- generated settings
random_secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 24; }

# ensure_setting NAME VALUE: adds a setting that an older env file does not have yet.
ensure_setting() { grep -q "^$1=" "$ENV_FILE" || printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE"; }

ensure_env_file() {
  [[ -f $ENV_FILE ]] && { ensure_settings; return 0; }
  umask 077
  cat >"$ENV_FILE" <<EOF
# Generated once by scripts/stack.sh; the stack's processes and the tests read it.
BERTH_DATABASE_URL=postgres://berth:$(random_secret)@127.0.0.1:$PG_PORT/berth
BERTH_TEMPORAL_ADDRESS=127.0.0.1:7233
BERTH_ADMIN_USERNAME=admin
BERTH_ADMIN_PASSWORD=$(random_secret)
BERTH_MINIO_ENDPOINT=http://127.0.0.1:9000
BERTH_MINIO_ACCESS_KEY=berth-$(random_secret | head -c 8)
BERTH_MINIO_SECRET_KEY=$(random_secret)
BERTH_REGISTRY_AUTH_USERNAME=berth
BERTH_REGISTRY_AUTH_PASSWORD=$(random_secret)
EOF
  umask 022
  ensure_settings
  log "generated settings and secrets in $ENV_FILE"
}

ensure_settings() {
  ensure_setting BERTH_INTERNAL_TOKEN "$(random_secret)"
  # Users may pull from Docker Hub and the stack's own registries, which live on loopback:
  # listed as internal, they are the only loopback registries a reference may name.
  ensure_setting BERTH_ALLOWED_REGISTRIES "docker.io,$REGISTRY,$AUTH_REGISTRY"
  ensure_setting BERTH_INTERNAL_REGISTRIES "$REGISTRY,$AUTH_REGISTRY"
}

# berth.env, then in cluster mode the cluster's settings over it.
load_env() {
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  # shellcheck disable=SC1091
  [[ $(stack_mode) == cluster && -f $CLUSTER_DIR/cluster.env ]] && . "$CLUSTER_DIR/cluster.env"
  set +a
}

docker_sock() { echo "$STATE/docker/$1/docker.sock"; }
host_docker() { local h=$1; shift; docker -H "unix://$(docker_sock "$h")" "$@"; }

# ---------------------------------------------------------------- PostgreSQL
pg_up() { pg_isready -q -h 127.0.0.1 -p $PG_PORT; }

start_postgres() {
  if ! pg_up; then
    pg_lsclusters -h 2>/dev/null | grep -q '^15 *main' || pg_createcluster 15 main >/dev/null
    pg_ctlcluster --skip-systemctl-redirect 15 main start 9>&- || true
    wait_for "PostgreSQL" 60 pg_up
  fi
  # The cluster's two Temporal nodes hold up to 64 connections beside Berth's pools and the tests'.
  if (($(runuser -u postgres -- psql -tAc 'show max_connections' postgres) < 300)); then
    log "PostgreSQL: max_connections 300 (restarting it)"
    runuser -u postgres -- psql -q -c 'alter system set max_connections = 300' postgres
    pg_ctlcluster --skip-systemctl-redirect 15 main restart 9>&-
    wait_for "PostgreSQL" 60 pg_up
  fi
  local password; password=$(sed -E 's#^postgres://berth:([^@]*)@.*#\1#' <<<"$BERTH_DATABASE_URL")
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -v pw="$password" postgres >/dev/null <<'EOF'
SELECT 'CREATE ROLE berth LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'berth')\gexec
ALTER ROLE berth WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE berth OWNER berth' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'berth')\gexec
EOF
}

# ---------------------------------------------------------------- Docker daemons
docker_up() { docker -H "unix://$(docker_sock "$1")" version >/dev/null 2>&1; }
docker_down() { ! docker_up "$1"; }

# daemon_json DIR ID: the daemon's configuration. Engine 20.10 takes its engine ID from
# key.json: one per daemon, so the IDs differ.
daemon_json() {
  printf '{"deprecated-key-path": "%s/key.json", "default-address-pools": [{"base": "%s", "size": %s}]}\n' \
    "$1" "${ADDRESS_POOLS[$2]}" "$USER_SUBNET_SIZE"
}

start_docker_host() {
  local id=$1 bridge=$2 cidr=$3 dir=$STATE/docker/$1 config
  config=$(daemon_json "$dir" "$id")
  if docker_up "$id"; then
    [[ -f $dir/daemon.json && $(cat "$dir/daemon.json") == "$config" ]] && return 0
    # A daemon reads daemon.json at start only. Restarting it stops its containers (they do
    # not restart: Berth's reconciliation marks them exited), so only when the file changed.
    log "Docker daemon $id: daemon.json changed; restarting it"
    stop_pidfile "dockerd-$id"
    wait_for "Docker daemon $id to stop" 60 docker_down "$id"
  fi
  mkdir -p "$dir/data" "$dir/exec"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$cidr" dev "$bridge"
  fi
  ip link set "$bridge" up
  printf '%s\n' "$config" >"$dir/daemon.json"
  rm -f "$dir/docker.pid" "$(docker_sock "$id")"
  start_bg "dockerd-$id" dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
    -H "unix://$(docker_sock "$id")" --pidfile "$dir/docker.pid" --bridge "$bridge"
  wait_for "Docker daemon $id" 90 docker_up "$id"
}

# ---------------------------------------------------------------- registries and images
registry_up() { curl -fs -o /dev/null "http://$1/v2/" || curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/" | grep -q 401; }

start_registry() {
  local name=$1 addr=$2 auth=${3:-} dir=$STATE/$1
  registry_up "$addr" && return 0
  mkdir -p "$dir/data"
  {
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' "$dir" "$addr"
    if [[ -n $auth ]]; then
      htpasswd -Bbn "$BERTH_REGISTRY_AUTH_USERNAME" "$BERTH_REGISTRY_AUTH_PASSWORD" >"$dir/htpasswd"
      printf 'auth:\n  htpasswd:\n    realm: berth-registry\n    path: %s/htpasswd\n' "$dir"
    fi
  } >"$dir/config.yml"
  start_bg "$name" docker-registry serve "$dir/config.yml"
  wait_for "registry $addr" 30 registry_up "$addr"
}

registry_has() { curl -fsS "http://$REGISTRY/v2/$1/tags/list" 2>/dev/null | grep -q "\"$2\""; }
auth_registry_has() {
  curl -fsS -u "$BERTH_REGISTRY_AUTH_USERNAME:$BERTH_REGISTRY_AUTH_PASSWORD" "http://$AUTH_REGISTRY/v2/$1/tags/list" 2>/dev/null | grep -q "\"$2\""
}
# What host workers use to pull from the htpasswd registry.
registry_credentials_json() {
  printf '{"%s":{"username":"%s","password":"%s"}}' "$AUTH_REGISTRY" "$BERTH_REGISTRY_AUTH_USERNAME" "$BERTH_REGISTRY_AUTH_PASSWORD"
}

# Images built from Debian's busybox-static: nothing is pulled from the internet.
seed_images() {
  registry_has library/busybox 1.35 && registry_has library/httpd latest && auth_registry_has private/busybox 1.35 && return 0
  log "building seed images from busybox-static"
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp" "$tmp/rootfs/root" "$tmp/ctx"
  cp /bin/busybox "$tmp/rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$tmp/rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/rootfs/etc/group"
  chmod 1777 "$tmp/rootfs/tmp"
  tar -C "$tmp/rootfs" -c . | host_docker host-a import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$REGISTRY/library/busybox:1.35" >/dev/null
  host_docker host-a tag "$REGISTRY/library/busybox:1.35" "$REGISTRY/library/busybox:latest"
  cat >"$tmp/ctx/Dockerfile" <<EOF
FROM $REGISTRY/library/busybox:1.35
RUN mkdir -p /www && echo '<h1>Berth httpd</h1>' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
EOF
  DOCKER_BUILDKIT=0 host_docker host-a build -q -t "$REGISTRY/library/httpd:latest" "$tmp/ctx" >/dev/null 2>"$LOGS/seed-build.log"
  for ref in library/busybox:1.35 library/busybox:latest library/httpd:latest; do
    host_docker host-a push -q "$REGISTRY/$ref" >/dev/null
  done
  # The same busybox in the htpasswd registry, for private-registry pulls.
  host_docker host-a tag "$REGISTRY/library/busybox:1.35" "$AUTH_REGISTRY/private/busybox:1.35"
  printf '%s' "$BERTH_REGISTRY_AUTH_PASSWORD" | docker --config "$tmp/cli" -H "unix://$(docker_sock host-a)" \
    login -u "$BERTH_REGISTRY_AUTH_USERNAME" --password-stdin "$AUTH_REGISTRY" >/dev/null 2>&1
  docker --config "$tmp/cli" -H "unix://$(docker_sock host-a)" push -q "$AUTH_REGISTRY/private/busybox:1.35" >/dev/null
  host_docker host-a rmi "$AUTH_REGISTRY/private/busybox:1.35" >/dev/null 2>&1 || true
  # The seeding leaves nothing behind on host-a: tests pull like a user would.
  host_docker host-a rmi -f "$REGISTRY/library/busybox:1.35" "$REGISTRY/library/busybox:latest" "$REGISTRY/library/httpd:latest" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}

# ---------------------------------------------------------------- Temporal and MinIO
temporal_up() { "$TEMPORAL_BIN" operator cluster health --address 127.0.0.1:7233 >/dev/null 2>&1; }

temporal_down() { ! temporal_up; }
# dev_temporal_cli ARGS...: the CLI against the dev server.
dev_temporal_cli() { "$TEMPORAL_BIN" "$@" --address 127.0.0.1:7233; }

# register_search_attributes NAMESPACE CLI...: SEARCH_ATTRIBUTES created as Keyword in NAMESPACE
# through CLI (a command running the temporal CLI with its server's flags appended:
# dev_temporal_cli, temporal_cli). Creating one that exists with that type succeeds: idempotent.
register_search_attributes() {
  local ns=$1 a; shift
  # One at a time: given several names in one call, a server on SQL visibility added only the first.
  for a in "${SEARCH_ATTRIBUTES[@]}"; do
    "$@" operator search-attribute create --namespace "$ns" --name "$a" --type Keyword >>"$LOGS/temporal-cli.log" 2>&1 \
      || die "could not register the search attribute $a in namespace $ns (see $LOGS/temporal-cli.log)"
  done
}

# has_search_attributes NAMESPACE CLI...: the server CLI reaches lists every one of SEARCH_ATTRIBUTES.
has_search_attributes() {
  local ns=$1 listed a; shift
  listed=$("$@" operator search-attribute list --namespace "$ns" 2>/dev/null) || return 1
  for a in "${SEARCH_ATTRIBUTES[@]}"; do [[ $listed =~ (^|[[:space:]])${a}[[:space:]] ]] || return 1; done
}

# Eager activity execution: an activity a workflow schedules on its own task queue (the
# database steps on berth-control) comes back in the workflow task's completion, one
# round trip through matching fewer. A running dev server started with other flags (by an older
# stack.sh) is restarted with these: its state is in its database file, and Berth's processes
# reconnect.
start_temporal() {
  local attributes=() a
  for a in "${SEARCH_ATTRIBUTES[@]}"; do attributes+=(--search-attribute "$a=Keyword"); done
  local args=(server start-dev --db-filename "$STATE/temporal/temporal.db"
    --ip 127.0.0.1 --port 7233 --ui-ip 127.0.0.1 --ui-port 8233 --metrics-port "$TEMPORAL_METRICS_PORT" --log-level warn
    --dynamic-config-value system.enableActivityEagerExecution=true "${attributes[@]}")
  if temporal_up && [[ $(cat "$RUN/temporal.args" 2>/dev/null) != "${args[*]}" ]] && pid_alive "$RUN/temporal.pid"; then
    log "Temporal dev server: its flags changed; restarting it"
    stop_pidfile temporal
    wait_for "Temporal dev server to stop" 30 temporal_down
  fi
  if ! temporal_up; then
    mkdir -p "$STATE/temporal"
    start_bg temporal "$TEMPORAL_BIN" "${args[@]}"
    echo "${args[*]}" >"$RUN/temporal.args"
    wait_for "Temporal dev server" 90 temporal_up
  fi
  # A server that was running already, started before an attribute joined the list, learns it here.
  register_search_attributes default dev_temporal_cli
}

minio_up() { curl -fsS -o /dev/null http://127.0.0.1:9000/minio/health/live; }

start_minio() {
  minio_up && return 0
  mkdir -p "$STATE/minio/data"
  MINIO_ROOT_USER=$BERTH_MINIO_ACCESS_KEY MINIO_ROOT_PASSWORD=$BERTH_MINIO_SECRET_KEY MINIO_BROWSER=on \
    start_bg minio "$MINIO_BIN" server "$STATE/minio/data" --address 127.0.0.1:9000 --console-address 127.0.0.1:9001 --quiet
  wait_for "MinIO" 60 minio_up
}

# ---------------------------------------------------------------- Berth's own processes
APP_PROCS=(api worker-control worker-host-a worker-host-b)

code_hash() {
  (cd "$ROOT" && find api activities billing contracts core db repositories services workers workflows package-lock.json -type f -print0 2>/dev/null \
    | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40)
}

api_up() { curl -fsS -o /dev/null "http://127.0.0.1:${BERTH_API_PORT:-8080}/readyz"; }
hosts_up() {
  [[ $(psql "$BERTH_DATABASE_URL" -tAc "select count(*) from hosts where last_heartbeat_at > now() - interval '20 seconds'" 2>/dev/null) -ge ${#HOSTS[@]} ]]
}

# Starts one of the API and workers (they read their settings from the environment).
start_proc() {
  local p=$1 spec id publish_ip
  cd "$ROOT"
  case $p in
    api) start_bg api node --import tsx api/server.ts ;;
    worker-control) start_bg worker-control node --import tsx workers/control.ts ;;
    worker-host-*)
      ensure_host_js
      for spec in "${HOSTS[@]}"; do
        read -r id _ _ publish_ip <<<"$spec"
        [[ $p == "worker-$id" ]] || continue
        BERTH_HOST_ID=$id BERTH_DOCKER_HOST="unix://$(docker_sock "$id")" BERTH_PUBLISH_IP=$publish_ip BERTH_METRICS_PORT=${METRICS_PORTS[$id]} \
          BERTH_REGISTRY_CREDENTIALS=$(registry_credentials_json) start_bg "worker-$id" sh workers/host-worker.sh
      done ;;
    *) die "no such process: $p" ;;
  esac
}

# The running mode's Berth processes (the API first), how one of them starts, when its hosts are
# up, the code they run (a mode switch restarts them) and how long they get to come up.
mode_procs() { if [[ $(stack_mode) == cluster ]]; then printf '%s\n' "${CLUSTER_APP_PROCS[@]}"; else printf '%s\n' "${APP_PROCS[@]}"; fi; }
start_mode_proc() { if [[ $(stack_mode) == cluster ]]; then start_cluster_proc "$1"; else start_proc "$1"; fi; }
mode_hosts_up() { if [[ $(stack_mode) == cluster ]]; then cluster_hosts_up; else hosts_up; fi; }
app_hash() { if [[ $(stack_mode) == cluster ]]; then echo "cluster-$(code_hash)"; else code_hash; fi; }
app_wait_seconds() { if [[ $(stack_mode) == cluster ]]; then echo 90; else echo 60; fi; }

start_app() {
  local hash p procs missing=() wait; hash=$(app_hash); wait=$(app_wait_seconds)
  mapfile -t procs < <(mode_procs)
  for p in "${procs[@]}"; do pid_alive "$RUN/$p.pid" || missing+=("$p"); done
  if [[ -f $RUN/app.hash && $(cat "$RUN/app.hash") == "$hash" ]]; then
    # The same code: start only what is not running (a worker that died), leaving the others be.
    ((${#missing[@]} == 0)) && return 0
    log "starting ${missing[*]}"
    for p in "${missing[@]}"; do start_mode_proc "$p"; done
  else
    ((${#missing[@]} < ${#procs[@]})) && log "Berth's code changed: restarting the API and workers"
    stop_app
    log "applying migrations"
    (cd "$ROOT" && node --import tsx db/migrate.ts) >>"$LOGS/migrate.log" 2>&1 || die "migrations failed (see $LOGS/migrate.log)"
    start_mode_proc worker-control
    for p in "${procs[@]}"; do [[ $p == worker-host-* ]] && start_mode_proc "$p"; done
    start_mode_proc api
    echo "$hash" >"$RUN/app.hash"
  fi
  wait_for "Berth API" "$wait" api_up
  wait_for "host workers" "$wait" mode_hosts_up
}

stop_app() { for p in api worker-control worker-host-a worker-host-b worker-host-c; do stop_pidfile "$p"; done; }

# ---------------------------------------------------------------- Prometheus
prometheus_up() { curl -fsS -o /dev/null "http://$PROMETHEUS_ADDR/-/ready"; }
port_taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# What Prometheus scrapes in the development stack, one target a line: JOB ADDRESS PROCESS
# (the jobs of ops/prometheus/prometheus.yml; PROCESS as `status` names it).
dev_scrape_targets() {
  local spec id
  echo "berth-api 127.0.0.1:${BERTH_API_PORT:-8080} api"
  echo "berth-worker 127.0.0.1:$CONTROL_METRICS_PORT worker-control"
  for spec in "${HOSTS[@]}"; do
    read -r id _ <<<"$spec"
    echo "berth-worker 127.0.0.1:${METRICS_PORTS[$id]} worker-$id"
  done
  echo "temporal 127.0.0.1:$TEMPORAL_METRICS_PORT temporal"
}
mode_scrape_targets() { if [[ $(stack_mode) == cluster ]]; then cluster_scrape_targets; else dev_scrape_targets; fi; }

# write_prometheus_targets DIR: one file_sd file per job (JOB.json), for the running mode.
# Prometheus re-reads them when they change: a mode switch needs no restart.
write_prometheus_targets() {
  local dir=$1 job address process
  declare -A groups=([prometheus]="{\"targets\": [\"$PROMETHEUS_ADDR\"], \"labels\": {\"process\": \"prometheus\"}}")
  while read -r job address process; do
    groups[$job]+="${groups[$job]:+, }{\"targets\": [\"$address\"], \"labels\": {\"process\": \"$process\"}}"
  done < <(mode_scrape_targets)
  for job in "${!groups[@]}"; do
    # Rewritten only when changed: Prometheus re-reads a file at each write.
    [[ $(cat "$dir/$job.json" 2>/dev/null) == "[${groups[$job]}]" ]] || printf '[%s]\n' "${groups[$job]}" >"$dir/$job.json"
  done
}

# Prometheus on $PROMETHEUS_ADDR with the repository's configuration (ops/prometheus/prometheus.yml,
# rendered with this checkout's rules directory and the stack's target files) and its data in
# $STATE/prometheus/data, three days of it (the rules look back one) and at most 1 GB. A running
# one re-reads its configuration and rules (SIGHUP).
start_prometheus() {
  local dir=$STATE/prometheus
  mkdir -p "$dir/data" "$dir/targets"
  write_prometheus_targets "$dir/targets"
  sed -e "s#@RULES_DIR@#$ROOT/ops/prometheus/rules#g" -e "s#@TARGETS_DIR@#$dir/targets#g" \
    "$ROOT/ops/prometheus/prometheus.yml" >"$dir/prometheus.yml"
  promtool check config "$dir/prometheus.yml" >"$LOGS/promtool.log" 2>&1 \
    || die "Prometheus's configuration or alert rules are invalid (see $LOGS/promtool.log)"
  if pid_alive "$RUN/prometheus.pid"; then
    kill -HUP "$(cat "$RUN/prometheus.pid")"
    return 0
  fi
  port_taken "$PROMETHEUS_ADDR" \
    && die "something else listens on $PROMETHEUS_ADDR (Debian's own prometheus service? systemctl mask --now prometheus)"
  start_bg prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=3d --storage.tsdb.retention.size=1GB --web.listen-address="$PROMETHEUS_ADDR"
  wait_for "Prometheus" 60 prometheus_up
}

# ---------------------------------------------------------------- commands
cmd_up() {
  local started=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$RUN" "$TOOLS/bin"
  if [[ $(stack_mode) == cluster ]]; then
    log "stopping the cluster for the development stack"
    stop_cluster
  fi
  echo dev >"$MODE_FILE"
  install_packages
  ensure_env_file
  load_env
  # The Go builds are the slow part of a cold start: run them beside everything else.
  build_tools & local builder=$!
  ensure_node_modules
  # The console's build (vite) beside the rest of the start; the API is started once it is done.
  ensure_console & local console_builder=$!
  start_postgres
  local spec id bridge cidr
  for spec in "${HOSTS[@]}"; do
    read -r id bridge cidr _ <<<"$spec"
    start_docker_host "$id" "$bridge" "$cidr"
  done
  start_registry registry "$REGISTRY"
  start_registry registry-auth "$AUTH_REGISTRY" auth
  seed_images
  wait "$builder" || die "building the Go tools failed"
  start_temporal
  start_minio
  wait "$console_builder" || die "building the web console failed (see $LOGS/web-build.log)"
  start_app
  start_prometheus
  log "up in $((SECONDS - started))s"
  cmd_status
}

cmd_down() {
  mkdir -p "$RUN"
  stop_pidfile prometheus
  stop_cluster
  stop_pidfile minio
  stop_pidfile temporal
  stop_pidfile registry-auth
  stop_pidfile registry
  local spec id
  for spec in "${HOSTS[@]}"; do
    read -r id _ _ <<<"$spec"
    stop_pidfile "dockerd-$id"
  done
  echo dev >"$MODE_FILE"
  pg_up 2>/dev/null && pg_ctlcluster --skip-systemctl-redirect 15 main stop || true
  log "down"
}

cmd_status() {
  local mode; mode=$(stack_mode)
  [[ -f $ENV_FILE ]] && load_env
  local row
  row() { printf '%-16s %-60s %s\n' "$1" "$2" "$( "${@:3}" >/dev/null 2>&1 && echo up || echo down)"; }
  printf 'mode: %s\n' "$( [[ $mode == cluster ]] && echo 'cluster (npm run up:cluster)' || echo 'development (npm run up)')"
  printf '%-16s %-60s %s\n' COMPONENT ADDRESS STATE
  row postgresql "127.0.0.1:$PG_PORT" pg_up
  local spec id
  for spec in "${HOSTS[@]}"; do
    read -r id _ _ <<<"$spec"
    [[ $mode == cluster && $id != host-a ]] && continue
    row "docker $id" "unix://$(docker_sock "$id")" docker_up "$id"
  done
  row registry "http://$REGISTRY" registry_up "$REGISTRY"
  row registry-auth "http://$AUTH_REGISTRY (htpasswd)" registry_up "$AUTH_REGISTRY"
  if [[ $mode == cluster ]]; then
    cluster_status_rows
  else
    row temporal "127.0.0.1:7233" temporal_up
    row temporal-ui "http://127.0.0.1:8233" curl -fsS -o /dev/null http://127.0.0.1:8233/
  fi
  row minio "http://127.0.0.1:9000" minio_up
  row minio-console "http://127.0.0.1:9001" curl -fsS -o /dev/null http://127.0.0.1:9001/
  row api "http://127.0.0.1:${BERTH_API_PORT:-8080} (metrics: /metrics)" api_up
  local procs; mapfile -t procs < <(mode_procs)
  for p in "${procs[@]:1}"; do
    row "$p" "task queue $( [[ $p == worker-control ]] && echo berth-control || echo "berth-host-${p#worker-}")" pid_alive "$RUN/$p.pid"
    row "  metrics" "$(worker_metrics_url "$p")" curl -fsS -o /dev/null --max-time 5 "$(worker_metrics_url "$p")"
  done
  row prometheus "http://$PROMETHEUS_ADDR" prometheus_up
}

# Where a worker serves its metrics (BERTH_METRICS_HOST:BERTH_METRICS_PORT, as start_proc and start_cluster_proc set them).
worker_metrics_url() {
  local p=$1
  case $p in
    worker-control) echo "http://127.0.0.1:9470/metrics" ;;
    worker-host-c) echo "http://$HOST_C_IP:9473/metrics" ;;
    worker-host-*) echo "http://127.0.0.1:${METRICS_PORTS[${p#worker-}]}/metrics" ;;
  esac
}

# One up or down at a time: two at once would each start a set of processes and leave
# one set running without a pid file.
with_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/stack.lock"
  flock 9
  "$@"
}

# `start NAME`: starts one process of a running stack if it is not running (minio, api,
# worker-control, worker-host-<id>), and nothing else: tests that stop one use it to bring it back.
cmd_start() {
  local p=${1:?usage: stack.sh start NAME}
  load_env
  case $p in
    minio) start_minio ;;
    api | worker-*)
      pid_alive "$RUN/$p.pid" && return 0
      [[ $(cat "$RUN/app.hash" 2>/dev/null) == "$(app_hash)" ]] \
        || die "Berth's code changed since the stack started: run $(if [[ $(stack_mode) == cluster ]]; then echo up:cluster; else echo up; fi)"
      start_mode_proc "$p"
      case $p in api) wait_for "Berth API" 60 api_up ;; worker-host-*) wait_for "host workers" 60 mode_hosts_up ;; esac ;;
    temporal-node*)
      [[ $(stack_mode) == cluster ]] || die "$p runs in cluster mode only"
      start_temporal_node "${p#temporal-node}" ;;
    *) die "no such process: $p" ;;
  esac
}

# shellcheck source=scripts/stack-cluster.sh
. "$ROOT/scripts/stack-cluster.sh"

case ${1:-} in
  up) with_lock cmd_up ;;
  up:cluster) with_lock cmd_up_cluster ;;
  # The Go builds of both modes, once (they are cached).
  build) mkdir -p "$LOGS" "$TOOLS/bin"; build_tools; build_cluster_tools ;;
  start) with_lock cmd_start "${2:-}" ;;
  down) with_lock cmd_down ;;
  status) cmd_status ;;
  # The Temporal CLI against whichever Temporal runs (the cluster: its load balancer, with TLS).
  temporal)
    shift
    if [[ $(stack_mode) == cluster ]]; then temporal_cli "$@"; else dev_temporal_cli "$@"; fi ;;
  temporal-members) temporal_cluster_members ;;
  env) cat "$ENV_FILE"; if [[ $(stack_mode) == cluster ]]; then cat "$CLUSTER_DIR/cluster.env"; fi ;;
  *) echo "usage: $0 up|up:cluster|start NAME|down|status|env|temporal ARGS...|temporal-members" >&2; exit 2 ;;
esac
