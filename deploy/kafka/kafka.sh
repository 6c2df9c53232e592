#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1, run from jars that
# Maven resolves from Maven Central (no tarball, no Docker).
#
#   kafka.sh resolve                         resolve the jars once into $PROFTASK_CACHE
#   kafka.sh start DATA_DIR PORT CTRL_PORT   format (first time only) and start in the background
#   kafka.sh stop DATA_DIR                   stop the broker started in DATA_DIR (data is kept)
#   kafka.sh status DATA_DIR                 exit 0 when the broker of DATA_DIR runs
#   kafka.sh cluster-start DATA_DIR P1,P2,P3 C1,C2,C3
#                                            a 3-node cluster (replication 3, min ISR 2): node N
#                                            in DATA_DIR/node-N, broker port PN, controller port CN
#   kafka.sh cluster-stop DATA_DIR           stop every node of the cluster in DATA_DIR
#   kafka.sh kill DATA_DIR                   SIGKILL the broker of DATA_DIR (a crash, for fault tests)
#
# Readiness (port, then a metadata call) is checked by `proftask kafka wait`, not here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../alive.sh"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
CACHE=${PROFTASK_CACHE:-$HOME/.cache/proftask}
LIB="$CACHE/kafka-$KAFKA_VERSION/lib"

resolve() {
  if [ -f "$LIB/.complete" ]; then return 0; fi
  mkdir -p "$LIB"
  echo "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $LIB" >&2
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIB" >&2
  ls "$LIB"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
  touch "$LIB/.complete"
}

pid_of() {  # prints the pid of the broker of $1 when it runs
  local pidfile="$1/kafka.pid"
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  alive "$pid" || return 1
  echo "$pid"
}

start() {
  local data_dir port ctrl_port
  data_dir=$(mkdir -p "$1" && cd "$1" && pwd); port=$2; ctrl_port=$3
  resolve
  if pid=$(pid_of "$data_dir"); then echo "kafka already running (pid $pid)" >&2; return 0; fi
  local props="$data_dir/server.properties"
  sed -e "s|@PORT@|$port|g" -e "s|@CTRL_PORT@|$ctrl_port|g" -e "s|@LOG_DIRS@|$data_dir/log|g" \
      "$here/server.properties.in" > "$props"
  local cp="$LIB/*"
  if [ ! -f "$data_dir/log/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid)
    java -cp "$cp" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" \
         --ignore-formatted > "$data_dir/format.log" 2>&1
  fi
  launch "$data_dir" "$props"
  echo "kafka starting on 127.0.0.1:$port (pid $!, log $data_dir/server.log)" >&2
}

launch() {  # launch DATA_DIR PROPS: start kafka.Kafka in the background, pid in DATA_DIR/kafka.pid
  local data_dir=$1 props=$2
  # Small heap: Kafka's real cache is the page cache, and chDB shares this machine.
  nohup java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.showDateTime=true \
        -Dkafka.logs.dir="$data_dir" -cp "$LIB/*" kafka.Kafka "$props" \
        > "$data_dir/server.log" 2>&1 < /dev/null &
  echo $! > "$data_dir/kafka.pid"
}

cluster_start() {
  local data_dir ports ctrls voters cluster_id
  data_dir=$(mkdir -p "$1" && cd "$1" && pwd)
  IFS=, read -r -a ports <<< "$2"
  IFS=, read -r -a ctrls <<< "$3"
  [ "${#ports[@]}" = 3 ] && [ "${#ctrls[@]}" = 3 ] || { echo "cluster-start needs 3 ports and 3 controller ports" >&2; exit 2; }
  resolve
  voters="1@127.0.0.1:${ctrls[0]},2@127.0.0.1:${ctrls[1]},3@127.0.0.1:${ctrls[2]}"
  [ -f "$data_dir/cluster.id" ] || java -cp "$LIB/*" kafka.tools.StorageTool random-uuid > "$data_dir/cluster.id"
  cluster_id=$(cat "$data_dir/cluster.id")
  for n in 1 2 3; do
    local node="$data_dir/node-$n" props
    mkdir -p "$node"
    if pid=$(pid_of "$node"); then echo "kafka node $n already running (pid $pid)" >&2; continue; fi
    props="$node/server.properties"
    sed -e "s|@NODE_ID@|$n|g" -e "s|@VOTERS@|$voters|g" -e "s|@PORT@|${ports[$((n-1))]}|g" \
        -e "s|@CTRL_PORT@|${ctrls[$((n-1))]}|g" -e "s|@LOG_DIRS@|$node/log|g" \
        "$here/server-cluster.properties.in" > "$props"
    if [ ! -f "$node/log/meta.properties" ]; then
      java -cp "$LIB/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted \
           > "$node/format.log" 2>&1
    fi
    launch "$node" "$props"
    echo "kafka node $n starting on 127.0.0.1:${ports[$((n-1))]} (pid $(cat "$node/kafka.pid"), log $node/server.log)" >&2
  done
}

stop() {
  local data_dir=$1 pid
  if ! pid=$(pid_of "$data_dir"); then return 0; fi
  kill "$pid"
  for _ in $(seq 1 150); do alive "$pid" || { rm -f "$data_dir/kafka.pid"; return 0; }; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$data_dir/kafka.pid"
}

# Every node at once: one by one, the last nodes wait out their shutdown timeout for a quorum
# that the first ones took away (and a caller's own timeout could leave them running).
cluster_stop() {
  local node waits=()
  for node in "$1"/node-*; do
    [ -d "$node" ] || continue
    stop "$node" &
    waits+=("$!")
  done
  for pid in "${waits[@]}"; do wait "$pid" || true; done
}

cmd=${1:-}; shift || true
case "$cmd" in
  resolve) resolve ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) pid_of "$1" >/dev/null ;;
  cluster-start) cluster_start "$@" ;;
  cluster-stop) cluster_stop "$1" ;;
  kill) if pid=$(pid_of "$1"); then kill -9 "$pid"; rm -f "$1/kafka.pid"; fi ;;
  *) echo "usage: $0 resolve | start DATA_DIR PORT CTRL_PORT | stop DATA_DIR | status DATA_DIR" \
          "| cluster-start DATA_DIR P1,P2,P3 C1,C2,C3 | cluster-stop DATA_DIR | kill DATA_DIR" >&2; exit 2 ;;
esac
