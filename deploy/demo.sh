#!/usr/bin/env bash
# The demo Go service with the proftask agent: two instances, demo-1 and demo-2 of service
# `demo`, each with its own load generator (make up / make down).
#   DATA=.data HTTP_PORT=8080 deploy/demo.sh up|down
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DATA=$(mkdir -p "${DATA:-.data}" && cd "${DATA:-.data}" && pwd)
HTTP_PORT=${HTTP_PORT:-8080}
BIN="$DATA/demo/demo"
# With tokens on, the demo's agents need one of the agent role: DEMO_TOKEN, else the first such
# grant of PROFTASK_TOKENS (token=tenant:agent); without one they met 401s for good.
token=${DEMO_TOKEN:-}
if [ -z "$token" ] && [ -n "${PROFTASK_TOKENS:-}" ]; then
  IFS=',' read -ra grants <<< "$PROFTASK_TOKENS"
  for grant in "${grants[@]}"; do
    case "${grant#*=}" in *:agent) token=${grant%%=*}; break ;; esac
  done
fi
token_args=()
if [ -n "$token" ]; then token_args=(-token "$token"); fi

. "$here/alive.sh"
running() { [ -f "$1" ] && alive "$(cat "$1")"; }

case "${1:-}" in
  up)
    mkdir -p "$DATA/demo"
    (cd "$here/demo" && go build -o "$BIN" .)
    for instance in demo-1 demo-2; do
      pidfile="$DATA/demo/$instance.pid"
      if running "$pidfile"; then echo "$instance already running (pid $(cat "$pidfile"))"; continue; fi
      nohup "$BIN" -server "http://127.0.0.1:$HTTP_PORT" -service demo -instance "$instance" "${token_args[@]}" \
            -state-dir "$DATA/demo/state-$instance" >> "$DATA/demo/$instance.log" 2>&1 < /dev/null &
      echo $! > "$pidfile"
      echo "$instance started (pid $!, log $DATA/demo/$instance.log)"
    done
    ;;
  down)
    for instance in demo-1 demo-2; do
      pidfile="$DATA/demo/$instance.pid"
      if running "$pidfile"; then kill "$(cat "$pidfile")"; echo "$instance stopped"; fi
      rm -f "$pidfile"
    done
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
