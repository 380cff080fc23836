#!/usr/bin/env bash
# Runs one real Apache Kafka 4.x node (combined broker + controller, KRaft) on
# 127.0.0.1 for the integration tests. Usage: kafka.sh start|stop
#
# start fetches kafka_2.13 and its runtime dependencies from Maven Central
# (through mvn, cached in ~/.m2 and $ADCLICK_TESTENV_DIR/kafka/lib), formats a
# fresh storage directory, starts the node on free ports, waits until the
# broker answers, and writes $ADCLICK_TESTENV_DIR/kafka.addr (host:port) and
# kafka.pid. Each start begins with empty storage: the controller's voter set
# records its port, and tests want no topics left over from an earlier run.
# stop kills the node and waits for it to exit.
set -euo pipefail

KAFKA_VERSION="${ADCLICK_KAFKA_VERSION:-4.4.0}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADCLICK_TESTENV_DIR:-$here/../../.cache/testenv}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
kdir="$dir/kafka"
lib="$kdir/lib-$KAFKA_VERSION"
pidfile="$dir/kafka.pid"
addrfile="$dir/kafka.addr"
logfile="$kdir/server.log"
start_timeout="${ADCLICK_KAFKA_START_TIMEOUT:-120}"

log() { echo "kafka.sh: $*" >&2; }

fetch() {
  [[ -f "$lib/.complete" ]] && return 0
  log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
  local pomdir="$kdir/fetch"
  mkdir -p "$pomdir"
  cat >"$pomdir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>adclick.testenv</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- kafka_2.13 declares only slf4j 1.7 and the log4j2 API; the broker needs a binding (the one Kafka ships). -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$lib.tmp"
  if ! mvn -q -B -f "$pomdir/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib.tmp" >"$kdir/fetch.log" 2>&1; then
    tail -n 40 "$kdir/fetch.log" >&2
    log "mvn could not fetch Kafka $KAFKA_VERSION"
    return 1
  fi
  touch "$lib.tmp/.complete"
  rm -rf "$lib"
  mv "$lib.tmp" "$lib"
}

free_port() {
  if command -v python3 >/dev/null &&
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null; then
    return 0
  fi
  # No python: a random high port nobody listens on.
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
  done
}

# alive: kill -0 alone would count a zombie (our own unreaped child) as alive.
alive() {
  kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

running() {
  [[ -f "$pidfile" ]] && alive "$(cat "$pidfile")"
}

start() {
  if running; then
    log "already running (pid $(cat "$pidfile"), $(cat "$addrfile" 2>/dev/null))"
    return 0
  fi
  fetch
  # Another process may take a port between our probe and Kafka's bind: retry.
  local attempt
  local rc
  for attempt in 1 2 3; do
    rc=0
    start_once || rc=$?
    ((rc == 0)) && return 0
    ((rc == 2)) && return 1 # a timeout is not a port race: do not wait again
    log "start attempt $attempt failed"
  done
  return 1
}

start_once() {
  local cp="$lib/*"
  local port cport
  port="$(free_port)"
  cport="$(free_port)"
  while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done

  rm -rf "$kdir/data" "$addrfile" "$pidfile"
  mkdir -p "$kdir/data" "$kdir/logs"
  cat >"$kdir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$kdir/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.retention.hours=24
EOF
  # Properties format: the YAML one would need jackson-dataformat-yaml on the classpath.
  cat >"$kdir/log4j2.properties" <<EOF
appender.out.type=Console
appender.out.name=STDOUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=STDOUT
logger.log.name=kafka.log
logger.log.level=WARN
logger.storage.name=org.apache.kafka.storage
logger.storage.level=WARN
logger.state.name=state.change.logger
logger.state.level=WARN
EOF
  local jvm=(-Xms512m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$kdir/log4j2.properties" "-Dkafka.logs.dir=$kdir/logs")

  local uuid
  uuid="$(java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$kdir/format.log" | tail -n 1)"
  if ! java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$uuid" \
      -c "$kdir/server.properties" --standalone >"$kdir/format.log" 2>&1; then
    tail -n 40 "$kdir/format.log" >&2
    log "storage format failed"
    return 1
  fi

  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$port (controller $cport), log $logfile"
  # setsid: the node must not die with the shell's process group on Ctrl-C of
  # an unrelated foreground job, and stop must be able to signal it alone.
  setsid java "${jvm[@]}" -cp "$cp" kafka.Kafka "$kdir/server.properties" >"$logfile" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"

  local deadline=$((SECONDS + start_timeout))
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      tail -n 60 "$logfile" >&2
      log "Kafka exited during startup"
      rm -f "$pidfile"
      return 1
    fi
    if grep -q "Kafka Server started" "$logfile" 2>/dev/null &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port" >"$addrfile"
      log "ready at 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.5
  done
  tail -n 60 "$logfile" >&2
  log "Kafka did not become ready within ${start_timeout}s"
  stop
  return 2
}

stop() {
  rm -f "$addrfile"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do
      alive "$pid" || break
      sleep 0.5
    done
    if alive "$pid"; then
      log "Kafka (pid $pid) ignored SIGTERM for 30 s: killing"
      kill -9 "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.2; done
    fi
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
