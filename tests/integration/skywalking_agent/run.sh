#!/usr/bin/env bash
# Build the demo with the real skywalking-go agent and run it against proftask's gRPC endpoint.
# Used by tests/integration/test_skywalking_agent.py; by hand:
#
#   tests/integration/skywalking_agent/run.sh build     # go-agent + instrumented demo; prints its path
#   SW_AGENT_NAME=svc SW_AGENT_INSTANCE_NAME=svc-1 \
#   SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE=127.0.0.1:11800 \
#     tests/integration/skywalking_agent/run.sh run
#
# The Go module proxy refuses github.com/apache/skywalking-go v0.7+, so the agent is built from
# the source tarball in ../shared/vendor/skywalking-go/ (its README says what it is). The tarball
# is unpacked under build/ (git-ignored; shared/ is read-only), into a directory whose name ends
# in `skywalking-go` (go-agent finds its own packages by that). Third-party modules come from the
# Go module proxy. The binaries are cached in build/skywalking-agent/<hash of tarball, demo
# sources, this script and the Go version>: a second build is instant.
#
# Exits 3 when the vendored source is missing (the test then fails, saying where it looked).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
VENDOR=${SKYWALKING_GO_VENDOR:-"$ROOT/../shared/vendor/skywalking-go"}
CACHE=${SKYWALKING_DEMO_CACHE:-"$ROOT/build/skywalking-agent"}

tarball() {
  local found
  found=$(ls "$VENDOR"/skywalking-go-*.tar.gz 2>/dev/null | head -1 || true)
  if [[ -z "$found" ]]; then
    echo "skywalking-go source not found: expected $VENDOR/skywalking-go-*.tar.gz (the shared" \
         "fixture beside the clone, ../shared; set SKYWALKING_GO_VENDOR to use another copy)" >&2
    exit 3
  fi
  echo "$found"
}

out_dir() {
  local key
  key=$( (sha256sum "$1" "$HERE/main.go" "$HERE/go.mod" "$HERE/run.sh" | cut -d' ' -f1; go env GOVERSION) \
         | sha256sum | cut -c1-16)
  echo "$CACHE/$key"
}

build() {
  local src out work
  src=$(tarball)
  out=$(out_dir "$src")
  if [[ -x "$out/bin/demo" && -x "$out/bin/go-agent" ]]; then
    echo "$out/bin/demo"
    return
  fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9  # another run building the same thing: wait for it, then use its result
  if [[ -x "$out/bin/demo" && -x "$out/bin/go-agent" ]]; then
    echo "$out/bin/demo"
    return
  fi
  # Builds for other sources, demos or Go versions: gone (one cache entry, bounded disk).
  find "$CACHE" -mindepth 1 -maxdepth 1 ! -name .lock ! -path "$out" -exec rm -rf {} +
  work="$out.tmp"
  rm -rf "$work"
  mkdir -p "$work/src" "$work/bin" "$work/demo"
  tar -xzf "$src" -C "$work/src"
  local sw="$work/src/skywalking-go"
  # A workspace of every module of the source (the go-agent links every plugin); plugins/sql and
  # plugins/gorm require an unpublished skywalking-go pseudo-version: the source itself.
  # -trimpath: the build cache serves the go-agent to a clone at another path (seconds, not minutes).
  (cd "$sw" && GOWORK=off go work init && go work edit -go=1.24 && go work use -r . \
     && go work edit -replace "github.com/apache/skywalking-go@v0.6.1-0.20260210074111-924fc3238ad2=./")
  (cd "$sw/tools/go-agent" && GOWORK="$sw/go.work" go build -trimpath -o "$work/bin/go-agent" ./cmd) >&2
  # The instrumented program reads the agent's source at its replaced path: in place first.
  rm -rf "$out" && mv "$work" "$out"
  cp "$HERE/main.go" "$HERE/go.mod" "$out/demo/"
  (cd "$out/demo" && go mod edit -replace "github.com/apache/skywalking-go=$out/src/skywalking-go" \
     && GOWORK=off GOFLAGS=-mod=mod go mod tidy \
     && GOWORK=off GOFLAGS=-mod=mod go build -toolexec="$out/bin/go-agent" -a -o "$out/bin/demo.tmp" .) >&2
  mv "$out/bin/demo.tmp" "$out/bin/demo"
  echo "$out/bin/demo"
}

case "${1:-}" in
  build)
    build
    ;;
  run)
    demo=$(build)
    export SW_AGENT_REPORTER_GRPC_PPROF_TASK_FETCH_INTERVAL=${SW_AGENT_REPORTER_GRPC_PPROF_TASK_FETCH_INTERVAL:-1}
    exec "$demo"
    ;;
  *)
    echo "usage: $0 build|run" >&2
    exit 2
    ;;
esac
