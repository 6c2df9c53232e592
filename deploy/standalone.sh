#!/usr/bin/env bash
# Standalone proftask: one `proftask serve all` process in the background (make up / make down).
#   DATA=.data HTTP_PORT=8080 KAFKA_PORT=9092 deploy/standalone.sh up|down|status
set -euo pipefail
DATA=$(mkdir -p "${DATA:-.data}" && cd "${DATA:-.data}" && pwd)
HTTP_PORT=${HTTP_PORT:-8080}
KAFKA_PORT=${KAFKA_PORT:-9092}
PIDFILE="$DATA/proftask.pid"
LOG="$DATA/proftask.log"
BIN=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

wait_ready() {
  for _ in $(seq 1 240); do
    if curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null; then return 0; fi
    running || { echo "proftask exited; last lines of $LOG:" >&2; tail -20 "$LOG" >&2; return 1; }
    sleep 0.5
  done
  echo "proftask not ready after 120s: $(curl -s "http://127.0.0.1:$HTTP_PORT/readyz")" >&2
  return 1
}

case "${1:-}" in
  up)
    if running; then
      echo "proftask already running (pid $(cat "$PIDFILE"))"
    else
      PROFTASK_DATA_DIR="$DATA" PROFTASK_HTTP_PORT="$HTTP_PORT" \
      PROFTASK_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT" \
        nohup "$BIN/proftask" serve all >> "$LOG" 2>&1 < /dev/null &
      echo $! > "$PIDFILE"
    fi
    wait_ready
    echo "proftask is up: http://127.0.0.1:$HTTP_PORT  (API /api/v1/pprof/tasks, log $LOG)"
    ;;
  down)
    if running; then
      pid=$(cat "$PIDFILE"); kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
      echo "proftask stopped (data kept in $DATA)"
    fi
    rm -f "$PIDFILE"
    ;;
  status)
    if running; then curl -s "http://127.0.0.1:$HTTP_PORT/readyz"; echo; else echo "not running"; exit 1; fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
