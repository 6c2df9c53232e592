#!/usr/bin/env bash
# proftask's distributed deployment on one machine (docs/design.md §1):
#   - a 3-node KRaft Kafka cluster (replication 3, min ISR 2; producers acks=all + idempotence),
#   - two task_svc and two ingest_svc processes behind one address (nginx, deploy/distributed/),
#   - the SkyWalking gRPC endpoint, the processor and query_svc. With embedded ClickHouse (chDB,
#     one process per data directory) the processor and query_svc share a process
#     (`serve processor,query`); with a ClickHouse server (PROFTASK_CLICKHOUSE_DSN=http://…, DDL
#     from `proftask migrate --print-ddl --cluster NAME`) run them apart.
#
#   DATA=.data-dist HTTP_PORT=8090 GRPC_PORT=11810 PORT_BASE=8100 deploy/distributed.sh up|down|status
#   (the processes listen on PORT_BASE+1… behind nginx on HTTP_PORT)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$(mkdir -p "${DATA:-$ROOT/.data-dist}" && cd "${DATA:-$ROOT/.data-dist}" && pwd)
HTTP_PORT=${HTTP_PORT:-8090}
GRPC_PORT=${GRPC_PORT:-11810}
KAFKA_PORTS=${KAFKA_PORTS:-19092,29092,39092}
KAFKA_CONTROLLER_PORTS=${KAFKA_CONTROLLER_PORTS:-19093,29093,39093}
BOOTSTRAP=$(echo "$KAFKA_PORTS" | sed 's/\([0-9]*\)/127.0.0.1:\1/g')
PORT_BASE=${PORT_BASE:-8100}
BIN=$ROOT/.venv/bin
# name:role:http-port
PROCESSES="task-1:task:$((PORT_BASE+1)) task-2:task:$((PORT_BASE+2)) ingest-1:ingest:$((PORT_BASE+3))
ingest-2:ingest:$((PORT_BASE+4)) grpc:grpc:$((PORT_BASE+5)) processor-query:processor,query:$((PORT_BASE+6))"

port_of() { for p in $PROCESSES; do [ "${p%%:*}" = "$1" ] && echo "${p##*:}"; done; }
. "$ROOT/deploy/alive.sh"
running() { [ -f "$DATA/$1/pid" ] && alive "$(cat "$DATA/$1/pid")"; }

start_process() {  # name role port
  local name=$1 role=$2 port=$3 dir="$DATA/$1"
  mkdir -p "$dir"
  if running "$name"; then echo "$name already running" >&2; return 0; fi
  # Every process keeps its own data directory; processor-query's holds embedded ClickHouse.
  PROFTASK_DATA_DIR="$dir" \
  PROFTASK_HTTP_PORT="$port" PROFTASK_GRPC_PORT="$GRPC_PORT" PROFTASK_KAFKA_BOOTSTRAP="$BOOTSTRAP" \
  PROFTASK_KAFKA_REPLICATION_FACTOR=3 \
    nohup "$BIN/proftask" serve "$role" >> "$dir/proftask.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

wait_ready() {  # name port
  for _ in $(seq 1 480); do
    curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return 0
    running "$1" || { echo "$1 exited; see $DATA/$1/proftask.log" >&2; tail -5 "$DATA/$1/proftask.log" >&2; return 1; }
    sleep 0.5
  done
  echo "$1 not ready after 240s" >&2; return 1
}

nginx_up() {
  if ! command -v nginx >/dev/null; then
    echo "installing nginx (Debian) for the local balancer" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q nginx-light >/dev/null 2>&1 ||
      { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q nginx-light >/dev/null; }
  fi
  mkdir -p "$DATA/nginx"
  sed -e "s|@DATA@|$DATA|g" -e "s|@USER@|$(id -un)|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" -e "s|@TASK1@|$(port_of task-1)|g" \
      -e "s|@TASK2@|$(port_of task-2)|g" -e "s|@INGEST1@|$(port_of ingest-1)|g" \
      -e "s|@INGEST2@|$(port_of ingest-2)|g" -e "s|@QUERY@|$(port_of processor-query)|g" \
      "$ROOT/deploy/distributed/nginx.conf.in" > "$DATA/nginx/nginx.conf"
  if [ -f "$DATA/nginx/nginx.pid" ] && alive "$(cat "$DATA/nginx/nginx.pid")"; then
    nginx -c "$DATA/nginx/nginx.conf" -p "$DATA/nginx" -s reload
  else
    nginx -c "$DATA/nginx/nginx.conf" -p "$DATA/nginx"
  fi
}

case "${1:-}" in
  up)
    "$ROOT/deploy/kafka/kafka.sh" cluster-start "$DATA/kafka" "$KAFKA_PORTS" "$KAFKA_CONTROLLER_PORTS"
    "$BIN/proftask" kafka wait --kafka "$BOOTSTRAP" --timeout 120
    for p in $PROCESSES; do IFS=: read -r name role port <<< "$p"; start_process "$name" "$role" "$port"; done
    for p in $PROCESSES; do IFS=: read -r name _ port <<< "$p"; wait_ready "$name" "$port"; done
    nginx_up
    echo "proftask (distributed): http://127.0.0.1:$HTTP_PORT/ (nginx → 2 task_svc, 2 ingest_svc, query_svc);" \
         "gRPC 127.0.0.1:$GRPC_PORT; Kafka $BOOTSTRAP; logs under $DATA"
    ;;
  down)
    [ -f "$DATA/nginx/nginx.pid" ] && nginx -c "$DATA/nginx/nginx.conf" -p "$DATA/nginx" -s quit 2>/dev/null || true
    # SIGTERM to every process first, then wait for them together (one after the other took a minute).
    pids=""
    for p in $PROCESSES; do
      name=${p%%:*}
      if running "$name"; then pid=$(cat "$DATA/$name/pid"); kill "$pid"; pids="$pids $pid"; fi
      rm -f "$DATA/$name/pid"
    done
    for _ in $(seq 1 100); do
      left=""; for pid in $pids; do alive "$pid" && left="$left $pid"; done
      [ -z "$left" ] && break; sleep 0.2
    done
    for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
    "$ROOT/deploy/kafka/kafka.sh" cluster-stop "$DATA/kafka"
    echo "proftask (distributed) stopped; data kept in $DATA"
    ;;
  status)
    for p in $PROCESSES; do IFS=: read -r name _ port <<< "$p"
      printf '%-16s %s\n' "$name" "$(running "$name" && curl -s "http://127.0.0.1:$port/readyz" || echo 'not running')"
    done
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
