#!/usr/bin/env bash
# The scale bench's own Berth beside the development stack: N Docker daemons (scale-1..scale-N,
# each with its own bridge, address pool, data and exec dirs under $BERTH_SCALE_DIR), a private
# PostgreSQL database (berth_scale, created and migrated on the stack's server), a Temporal
# namespace of its own on the stack's Temporal, and this worktree's API, control worker and one
# host worker per daemon. It shares only the stack's PostgreSQL server, Temporal server and
# registry: the nightly release the bench triggers removes everything of THIS Berth only.
#
#   bash bench/scale-hosts.sh up N [API_PORT=18085]   # (re)starts it all, fresh
#   bash bench/scale-hosts.sh down                    # stops it all, removes the daemons' data,
#                                                     # the database and the namespace
#
# Needs root (bridges, dockerd), the stack up (`npm run up`) and its settings
# (~/.local/state/berth/berth.env). What the processes run with (raised per-user limits, a port
# range of their own, a publish address per host) is set here, for these processes only.
# `up` writes $BERTH_SCALE_DIR/scale.env (API port, namespace, database URL) and one pid file
# per process under $BERTH_SCALE_DIR/run (bench/scale.ts reads both); logs in $BERTH_SCALE_DIR/logs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STATE=${BERTH_STATE_DIR:-$HOME/.local/state/berth}
T=${BERTH_TOOLS_DIR:-$HOME/.cache/berth}/bin/temporal
DIR=${BERTH_SCALE_DIR:-/tmp/berth-scale}
DB=berth_scale
REGISTRY=127.0.0.1:5000
IMAGE=$REGISTRY/library/busybox:1.35
MAX_HOSTS=15
cmd=${1:?usage: scale-hosts.sh up N [API_PORT] | down}

set -a
# shellcheck disable=SC1091
. "$STATE/berth.env"
set +a
ADDR=${BERTH_TEMPORAL_ADDRESS:-127.0.0.1:7233}
ADMIN_URL=${BERTH_DATABASE_URL%/*}/berth # the stack's database: only to create and drop ours
export BERTH_DATABASE_URL=${BERTH_DATABASE_URL%/*}/$DB

# Host i: bridge bscale<i> 10.239.<16(i-1)>.1/20 (4,094 addresses: plain Docker's baseline runs on it), users' networks from 10.<239+i>.0.0/16 in /27s,
# containers published on 127.0.1.<i> (clear of the stack's 127.0.0.1/.2, 172.28/29, 10.210/211).
sock() { echo "$DIR/docker/scale-$1/docker.sock"; }
dock() { local i=$1; shift; docker -H "unix://$(sock "$i")" "$@"; }

stop_pid() { # FILE: TERM the process, wait up to 60 s, then KILL
  local f=$1 pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  mkdir -p "$DIR/run"
  # Berth's processes first (nothing then acts on the daemons), then each daemon after removing
  # whatever a failed run left on it, then the database and the namespace.
  for f in "$DIR"/run/api.pid "$DIR"/run/control.pid "$DIR"/run/host-*.pid; do stop_pid "$f"; done
  for d in "$DIR"/docker/scale-*; do
    [[ -d $d ]] || continue
    local i=${d##*/scale-}
    if [[ -f $DIR/run/dockerd-$i.pid ]] && dock "$i" version >/dev/null 2>&1; then
      dock "$i" ps -aq | xargs -r -n 100 docker -H "unix://$(sock "$i")" rm -f >/dev/null 2>&1 || true
      dock "$i" network prune -f >/dev/null 2>&1 || true
    fi
    stop_pid "$DIR/run/dockerd-$i.pid"
    ip link del "bscale$i" 2>/dev/null || true
    rm -rf "$d"
  done
  if [[ -f $DIR/scale.env ]]; then
    local ns; ns=$(sed -n 's/^BERTH_TEMPORAL_NAMESPACE=//p' "$DIR/scale.env")
    [[ -n $ns ]] && "$T" operator namespace delete --namespace "$ns" --yes --address "$ADDR" >/dev/null 2>&1 || true
    rm -f "$DIR/scale.env"
  fi
  psql "$ADMIN_URL" -q -c "drop database if exists $DB with (force)" >/dev/null
}

start_daemon() { # I
  local i=$1 d=$DIR/docker/scale-$1
  mkdir -p "$d/data" "$d/exec"
  printf '{"deprecated-key-path": "%s/key.json", "default-address-pools": [{"base": "10.%d.0.0/16", "size": 27}]}\n' "$d" $((239 + i)) >"$d/daemon.json"
  ip link add "bscale$i" type bridge
  ip addr add "10.239.$((16 * (i - 1))).1/20" dev "bscale$i"
  ip link set "bscale$i" up
  nohup dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" -H "unix://$(sock "$i")" \
    --pidfile "$d/docker.pid" --bridge "bscale$i" >"$DIR/logs/dockerd-$i.log" 2>&1 &
  echo $! >"$DIR/run/dockerd-$i.pid"
}

up() {
  local n=$1 port=$2
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= MAX_HOSTS)) || { echo "N must be 1..$MAX_HOSTS" >&2; exit 2; }
  down
  mkdir -p "$DIR/run" "$DIR/logs" "$DIR/docker"
  rm -f "$DIR"/logs/*.log
  # One after another: daemons starting together race to create Docker's iptables chains.
  for i in $(seq 1 "$n"); do
    start_daemon "$i"
    for _ in $(seq 1 300); do dock "$i" version >/dev/null 2>&1 && break; sleep 0.2; done
    dock "$i" version >/dev/null || { echo "dockerd scale-$i did not start: $DIR/logs/dockerd-$i.log" >&2; exit 1; }
  done
  # The image every container runs, loaded from the stack's registry (no internet).
  local pulls=()
  for i in $(seq 1 "$n"); do dock "$i" pull -q "$IMAGE" >/dev/null & pulls+=($!); done
  for p in "${pulls[@]}"; do wait "$p"; done

  psql "$ADMIN_URL" -q -c "create database $DB" >/dev/null
  node --import tsx db/migrate.ts >"$DIR/logs/migrate.log" 2>&1

  local ns; ns=berth-scale-$n-$(date +%s)
  "$T" operator namespace create --namespace "$ns" --address "$ADDR" >/dev/null
  for a in BerthUserId BerthHostId BerthResourceId; do
    for _ in $(seq 1 20); do
      "$T" operator search-attribute create --namespace "$ns" --name "$a" --type Keyword --address "$ADDR" >/dev/null 2>&1 && break
      sleep 0.5
    done
  done
  printf 'BERTH_API_PORT=%s\nBERTH_TEMPORAL_NAMESPACE=%s\nBERTH_DATABASE_URL=%s\nBERTH_SCALE_HOSTS=%s\n' "$port" "$ns" "$BERTH_DATABASE_URL" "$n" >"$DIR/scale.env"

  # This Berth's settings: limits raised for a bench of many containers by few users.
  export BERTH_TEMPORAL_NAMESPACE=$ns BERTH_METRICS_PORT=0 \
    BERTH_MAX_CONTAINERS_PER_USER=100000 BERTH_MAX_PULLS_PER_USER=1000 \
    BERTH_RATE_LIMIT_MAX=10000000 BERTH_PORT_RANGE=30000-39999 BERTH_MIN_MEMORY_MB=6 \
    BERTH_WAIT_TIMEOUT=30m UV_THREADPOOL_SIZE=8
  # Users' networks stay apart by Docker's isolation only: the machine's iptables chains are
  # shared with the stack's workers, which this bench leaves as they are.
  export BERTH_EGRESS_FIREWALL=off
  local creds
  creds=$(printf '{"127.0.0.1:5001":{"username":"%s","password":"%s"}}' "$BERTH_REGISTRY_AUTH_USERNAME" "$BERTH_REGISTRY_AUTH_PASSWORD")
  nohup node --import tsx workers/control.ts >"$DIR/logs/control.log" 2>&1 & echo $! >"$DIR/run/control.pid"
  for i in $(seq 1 "$n"); do
    BERTH_HOST_ID=scale-$i BERTH_DOCKER_HOST="unix://$(sock "$i")" BERTH_PUBLISH_IP=127.0.1.$i BERTH_REGISTRY_CREDENTIALS=$creds \
      nohup node --import tsx workers/host.ts >"$DIR/logs/host-$i.log" 2>&1 &
    echo $! >"$DIR/run/host-$i.pid"
  done
  BERTH_API_PORT=$port nohup node --import tsx api/server.ts >"$DIR/logs/api.log" 2>&1 & echo $! >"$DIR/run/api.pid"
  for _ in $(seq 1 180); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" \
      && [[ $(psql "$BERTH_DATABASE_URL" -tAc "select count(*) from hosts where id like 'scale-%'") == "$n" ]]; then
      echo "scale Berth up: $n hosts, API http://127.0.0.1:$port, namespace $ns, database $DB"
      return 0
    fi
    sleep 1
  done
  echo "scale Berth did not come up; see $DIR/logs/*.log" >&2
  exit 1
}

case $cmd in
  up) up "${2:?usage: scale-hosts.sh up N [API_PORT]}" "${3:-18085}" ;;
  down) down; echo "scale Berth down" ;;
  *) echo "usage: scale-hosts.sh up N [API_PORT] | down" >&2; exit 2 ;;
esac
