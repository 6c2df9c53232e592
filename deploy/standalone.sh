#!/usr/bin/env bash
# Standalone proftask: one `proftask serve all` process in the background (make up / make down),
# and `proftask replay` with the same environment (make replay).
#   DATA=.data HTTP_PORT=8080 KAFKA_PORT=9092 deploy/standalone.sh up|down|status|replay
set -euo pipefail
DATA=$(mkdir -p "${DATA:-.data}" && cd "${DATA:-.data}" && pwd)
HTTP_PORT=${HTTP_PORT:-8080}
KAFKA_PORT=${KAFKA_PORT:-9092}
PIDFILE="$DATA/proftask.pid"
LOG="$DATA/proftask.log"
BIN=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin
export PROFTASK_DATA_DIR="$DATA" PROFTASK_HTTP_PORT="$HTTP_PORT" PROFTASK_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

# Our process is `proftask serve all` started with PROFTASK_DATA_DIR=$DATA (and, since this
# script passes it, --data-dir $DATA): that tells it from a process that got its pid after a crash.
is_ours() {  # is_ours PID: that process runs (a zombie has exited) and is the proftask of $DATA
  local pid=$1 state
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "proftask serve all " || return 1
  tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qxF "PROFTASK_DATA_DIR=$DATA"
}

pid_of() {  # prints the pid of the proftask of $DATA when it runs
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  [[ "$pid" =~ ^[0-9]+$ ]] && is_ours "$pid" || return 1
  echo "$pid"
}

# A process killed with SIGKILL a moment ago may still be exiting (and holding chDB's lock and
# the HTTP port): wait until it is gone rather than take it for a running proftask.
wait_gone() {  # wait_gone PID SECONDS
  for _ in $(seq 1 $(($2 * 10))); do is_ours "$1" || return 0; sleep 0.1; done
  return 1
}

wait_ready() {  # wait_ready PID: 0 ready, 1 exited (its log shown), 2 not ready in time
  for _ in $(seq 1 240); do
    if curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null && is_ours "$1"; then return 0; fi
    is_ours "$1" || return 1
    sleep 0.5
  done
  echo "proftask not ready after 120s: $(curl -s "http://127.0.0.1:$HTTP_PORT/readyz")" >&2
  return 2
}

start() {
  if curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz"; then
    echo "port $HTTP_PORT already answers HTTP, but not from the proftask of $DATA: stop that process or set HTTP_PORT" >&2
    exit 1
  fi
  nohup "$BIN/proftask" serve all --data-dir "$DATA" --http-port "$HTTP_PORT" >> "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  echo "proftask starting (pid $!, log $LOG)"
}

case "${1:-}" in
  up)
    if pid=$(pid_of); then
      echo "proftask already running (pid $pid)"
      if wait_ready "$pid"; then :; else
        [ $? = 2 ] && exit 1
        # it was exiting (killed a moment ago): start a new one
        echo "proftask (pid $pid) exited before it was ready; starting a new one"
        start
      fi
    else
      start
    fi
    pid=$(cat "$PIDFILE")
    wait_ready "$pid" || { rc=$?; [ $rc = 1 ] && { echo "proftask exited; last lines of $LOG:" >&2; tail -20 "$LOG" >&2; }
      [ $rc = 2 ] && echo "it is still running (pid $pid) and may yet be ready; \`make down\` stops it" >&2; exit 1; }
    echo "proftask is up: http://127.0.0.1:$HTTP_PORT  (API /api/v1/pprof/tasks, log $LOG)"
    ;;
  down)
    if pid=$(pid_of); then
      kill "$pid"
      wait_gone "$pid" 20 || { kill -9 "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || true; }
      echo "proftask stopped (data kept in $DATA)"
    fi
    rm -f "$PIDFILE"
    ;;
  status)
    if pid_of >/dev/null; then curl -s "http://127.0.0.1:$HTTP_PORT/readyz"; echo; else echo "not running"; exit 1; fi
    ;;
  replay)
    # chDB opens a data directory in one process only
    if pid=$(pid_of); then echo "proftask (pid $pid) owns $DATA: stop it first (make down)" >&2; exit 1; fi
    "$BIN/proftask" replay --data-dir "$DATA"
    ;;
  *) echo "usage: $0 up|down|status|replay" >&2; exit 2 ;;
esac
