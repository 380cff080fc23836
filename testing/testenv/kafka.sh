#!/usr/bin/env bash
# Runs one real Apache Kafka 4.x node (combined broker + controller, KRaft) on
# 127.0.0.1 for the integration tests.
# Usage: kafka.sh start|stop|start-secure|stop-secure
#
# start fetches kafka_2.13 and its runtime dependencies from Maven Central
# (through mvn, cached in ~/.m2 and $ADCLICK_TESTENV_DIR/kafka/lib), formats a
# fresh storage directory, starts the node on free ports, waits until the
# broker answers, and writes $ADCLICK_TESTENV_DIR/kafka.addr (host:port) and
# kafka.pid. Each start begins with empty storage: the controller's voter set
# records its port, and tests want no topics left over from an earlier run.
# stop kills the node and waits for it to exit.
#
# start-secure and stop-secure do the same for a second node, in
# $ADCLICK_TESTENV_DIR/kafka-secure, whose client listener is SASL_SSL (the
# controller's stays plaintext, on 127.0.0.1): a CA and the broker's
# keystore made with the JDK's keytool (kept across starts in
# kafka-secure-tls/), a user "adclick" with a fresh random password at every
# start, for PLAIN (JAAS) and SCRAM-SHA-256 and -512 (created at format
# time). It writes kafka-secure.addr and, for the tests, in kafka-secure/:
# ca.pem (the CA's certificate), username and password (mode 600).
set -euo pipefail

KAFKA_VERSION="${ADCLICK_KAFKA_VERSION:-4.4.0}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADCLICK_TESTENV_DIR:-$here/../../.cache/testenv}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
kdir="$dir/kafka" # the fetched libraries, and the plain node's state
lib="$kdir/lib-$KAFKA_VERSION"
secure=0
case "${1:-}" in start-secure | stop-secure) secure=1 ;; esac
name=kafka
((secure)) && name=kafka-secure
ndir="$dir/$name" # the node's configuration, data and logs
pidfile="$dir/$name.pid"
addrfile="$dir/$name.addr"
logfile="$ndir/server.log"
tlsdir="$dir/kafka-secure-tls"
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

# ours says whether pid is this node's java (its command line names the node's
# directory): a stale pid file whose pid was reused must not get a signal.
ours() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$ndir/"
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

# random_secret prints 32 hex characters from /dev/urandom: passwords that
# need no quoting in a properties file, a JAAS line or --add-scram.
random_secret() {
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# keystore makes, once, the CA and the broker's PKCS12 keystore (a key and a
# certificate for 127.0.0.1 and localhost, signed by the CA) and truststore
# with the JDK's keytool: the one beside the java that runs Kafka.
keystore() {
  [[ -f "$tlsdir/.complete" ]] && return 0
  local kt
  kt="$(dirname "$(readlink -f "$(command -v java)")")/keytool"
  [[ -x "$kt" ]] || kt="$(command -v keytool)" || { log "no keytool beside java or on PATH"; return 1; }
  rm -rf "$tlsdir"
  mkdir -p "$tlsdir"
  local pw
  pw="$(random_secret)"
  (
    set -e
    cd "$tlsdir"
    umask 077
    echo "$pw" >store.password
    local common=(-storetype PKCS12 -storepass "$pw" -keypass "$pw")
    "$kt" -genkeypair -alias ca -dname "CN=adclick test CA" -keyalg EC -groupname secp256r1 \
      -validity 3650 -ext bc:c -keystore ca.p12 "${common[@]}"
    "$kt" -exportcert -alias ca -keystore ca.p12 -storepass "$pw" -rfc -file ca.pem
    "$kt" -genkeypair -alias broker -dname "CN=localhost" -keyalg EC -groupname secp256r1 \
      -validity 3650 -keystore broker.p12 "${common[@]}"
    "$kt" -certreq -alias broker -keystore broker.p12 -storepass "$pw" -file broker.csr
    "$kt" -gencert -alias ca -keystore ca.p12 -storepass "$pw" -infile broker.csr -outfile broker.pem -rfc \
      -validity 3650 -ext "SAN=ip:127.0.0.1,dns:localhost" -ext "EKU=serverAuth,clientAuth"
    "$kt" -importcert -alias ca -file ca.pem -keystore broker.p12 -noprompt "${common[@]}"
    "$kt" -importcert -alias broker -file broker.pem -keystore broker.p12 -noprompt "${common[@]}"
    "$kt" -importcert -alias ca -file ca.pem -keystore truststore.p12 -noprompt "${common[@]}"
  ) >"$dir/kafka-secure-keytool.log" 2>&1 || {
    tail -n 40 "$dir/kafka-secure-keytool.log" >&2
    log "keytool could not make the keystore"
    return 1
  }
  touch "$tlsdir/.complete"
}

# secure_config writes the secured node's listeners and security settings,
# a fresh password for the user adclick, and the files tests read; it adds
# the SCRAM users to format_args (start_once's).
secure_config() {
  local port=$1 cport=$2
  keystore
  local pw bpw kspw
  pw="$(random_secret)"
  bpw="$(random_secret)"
  kspw="$(cat "$tlsdir/store.password")"
  (
    umask 077
    echo adclick >"$ndir/username"
    echo "$pw" >"$ndir/password"
    cp "$tlsdir/ca.pem" "$ndir/ca.pem"
    cat >"$ndir/server.properties" <<EOF
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$port
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="$bpw" user_broker="$bpw" user_adclick="$pw";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$tlsdir/broker.p12
ssl.keystore.password=$kspw
ssl.key.password=$kspw
ssl.truststore.type=PKCS12
ssl.truststore.location=$tlsdir/truststore.p12
ssl.truststore.password=$kspw
ssl.client.auth=none
EOF
  )
  format_args=(--add-scram "SCRAM-SHA-256=[name=adclick,password=$pw]"
    --add-scram "SCRAM-SHA-512=[name=adclick,password=$pw]")
}

start_once() {
  local cp="$lib/*"
  local port cport
  port="$(free_port)"
  cport="$(free_port)"
  while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done

  rm -rf "$ndir/data" "$addrfile" "$pidfile"
  mkdir -p "$ndir/data" "$ndir/logs"
  local format_args=()
  if ((secure)); then
    secure_config "$port" "$cport"
  else
    cat >"$ndir/server.properties" <<EOF
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
  fi
  cat >>"$ndir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$ndir/data
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
  cat >"$ndir/log4j2.properties" <<EOF
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
    "-Dlog4j2.configurationFile=$ndir/log4j2.properties" "-Dkafka.logs.dir=$ndir/logs")

  local uuid
  uuid="$(java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$ndir/format.log" | tail -n 1)"
  if ! java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$uuid" \
      -c "$ndir/server.properties" --standalone "${format_args[@]}" >"$ndir/format.log" 2>&1; then
    tail -n 40 "$ndir/format.log" >&2
    log "storage format failed"
    return 1
  fi

  log "starting $name $KAFKA_VERSION on 127.0.0.1:$port (controller $cport), log $logfile"
  # setsid: the node must not die with the shell's process group on Ctrl-C of
  # an unrelated foreground job, and stop must be able to signal it alone.
  setsid java "${jvm[@]}" -cp "$cp" kafka.Kafka "$ndir/server.properties" >"$logfile" 2>&1 </dev/null &
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
  if alive "$pid" && ours "$pid"; then
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
start-secure)
  # Tests of several packages may ask for the secured node at once: one
  # starts it, the others find it running.
  exec 9>"$dir/kafka-secure.lock"
  flock 9
  start
  ;;
stop-secure) stop ;;
*)
  echo "usage: $0 start|stop|start-secure|stop-secure" >&2
  exit 2
  ;;
esac
