#!/usr/bin/env bash
# Build the demo with the real skywalking-go agent (0.7.0, from the Go module proxy) and run it
# against proftask's gRPC endpoint. Used by tests/integration/test_skywalking_agent.py; by hand:
#
#   tests/integration/skywalking_agent/run.sh build            # go-agent + instrumented demo
#   SW_AGENT_NAME=svc SW_AGENT_INSTANCE_NAME=svc-1 \
#   SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE=127.0.0.1:11800 \
#     tests/integration/skywalking_agent/run.sh run
#
# Exits 3 when the module proxy does not serve the agent (the test then skips, saying so).
set -euo pipefail
cd "$(dirname "$0")"
VERSION=v0.7.0
OUT=${SKYWALKING_DEMO_OUT:-"$PWD/.build"}

case "${1:-}" in
  build)
    if ! err=$(go mod download -json "github.com/apache/skywalking-go@$VERSION" 2>&1) || grep -q '"Error"' <<<"$err"; then
      echo "the Go module proxy does not serve github.com/apache/skywalking-go@$VERSION:" >&2
      echo "$err" | grep -m1 '"Error"' >&2 || echo "$err" >&2
      exit 3
    fi
    mkdir -p "$OUT"
    GOBIN="$OUT" go install "github.com/apache/skywalking-go/tools/go-agent@$VERSION"
    GOFLAGS=-mod=mod go mod tidy
    GOFLAGS=-mod=mod go build -toolexec="$OUT/go-agent" -a -o "$OUT/demo" .
    echo "$OUT/demo"
    ;;
  run)
    export SW_AGENT_REPORTER_GRPC_PPROF_TASK_FETCH_INTERVAL=${SW_AGENT_REPORTER_GRPC_PPROF_TASK_FETCH_INTERVAL:-1}
    exec "$OUT/demo"
    ;;
  *)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
