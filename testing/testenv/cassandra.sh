#!/usr/bin/env bash
# Starts and stops a single-node Apache Cassandra 5.0 for the integration tests,
# fetched from Maven Central with mvn (no Docker, no tarball download).
#
#   testing/testenv/cassandra.sh start   fetch (cached), start on 127.0.0.1 with free
#                                   ports, wait until CQL answers, write
#                                   $ADCLICK_TESTENV_DIR/cassandra.addr (host:port)
#                                   and cassandra.pid
#   testing/testenv/cassandra.sh stop    stop it and wait until it is gone
#   testing/testenv/cassandra.sh start-secure | stop-secure
#                                   the same, a second node of its own (run
#                                   directory cassandra-secure-run, files
#                                   cassandra-secure.addr and .pid) that asks for
#                                   a password (PasswordAuthenticator; the default
#                                   superuser cassandra/cassandra) and speaks
#                                   only TLS on its CQL port. Its CA and node
#                                   keystore are made once with the JDK's keytool
#                                   under cassandra-secure-tls/ (ca.pem is the CA a
#                                   client trusts); a fresh random password for a
#                                   client role is written to
#                                   cassandra-secure.password at every start (the
#                                   Go helper, testenv.SecureCassandra, creates
#                                   the role: this script has no CQL client).
#
# Jars are copied by `mvn dependency:copy-dependencies` from a generated pom into
# $ADCLICK_TESTENV_DIR/cassandra-<version>/lib (and cached in ~/.m2). Data, commit
# log and logs live under $ADCLICK_TESTENV_DIR/cassandra-run and are wiped at
# every start. JMX is off (no jmx port property is set); heap is
# ADCLICK_CASSANDRA_HEAP (default 768M; the secured node's
# ADCLICK_CASSANDRA_SECURE_HEAP, default 512M: it holds a few test keyspaces).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ADCLICK_TESTENV_DIR:-$here/../../.cache/testenv}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
version="${ADCLICK_CASSANDRA_VERSION:-5.0.6}"
heap="${ADCLICK_CASSANDRA_HEAP:-768M}"
timeout_s="${ADCLICK_CASSANDRA_START_TIMEOUT:-180}"
home="$dir/cassandra-$version"
secure=0
run="$dir/cassandra-run"
pidfile="$dir/cassandra.pid"
addrfile="$dir/cassandra.addr"

# secure_mode points the files at the secured node's, so that both nodes can
# run side by side and stop never touches the other one.
secure_mode() {
  secure=1
  heap="${ADCLICK_CASSANDRA_SECURE_HEAP:-512M}"
  run="$dir/cassandra-secure-run"
  pidfile="$dir/cassandra-secure.pid"
  addrfile="$dir/cassandra-secure.addr"
  tlsdir="$dir/cassandra-secure-tls"
  pwfile="$dir/cassandra-secure.password"
}

log() { echo "cassandra.sh: $*" >&2; }

fetch() {
  if [[ -f "$home/lib/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn is not installed (apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { log "java is not installed (JDK 17: apt-get install openjdk-17-jdk-headless)"; exit 1; }
  log "fetching org.apache.cassandra:cassandra-all:$version with mvn"
  rm -rf "$home"
  mkdir -p "$home/lib"
  cat >"$home/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>adclick.testenv</groupId>
  <artifactId>cassandra-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
POM
  if ! mvn -B -q -f "$home/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$home/lib" -DincludeScope=runtime >"$home/mvn.log" 2>&1; then
    tail -n 40 "$home/mvn.log" >&2
    log "mvn could not fetch cassandra-all $version"
    exit 1
  fi
  touch "$home/lib/.complete"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# make_tls makes, once, a CA and the node's PKCS12 keystore signed by it
# (SAN 127.0.0.1 and localhost, so a client verifying the host accepts it),
# with the JDK's keytool. They outlive restarts: only the run directory is
# wiped, and generating RSA keys is the slow part.
make_tls() {
  if [[ -f "$tlsdir/.complete" ]]; then return 0; fi
  command -v keytool >/dev/null || { log "keytool is not installed (it comes with the JDK: apt-get install openjdk-17-jdk-headless)"; exit 1; }
  rm -rf "$tlsdir"
  mkdir -p "$tlsdir"
  chmod 700 "$tlsdir"
  local pw; pw="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  echo "$pw" >"$tlsdir/storepass"
  local kt=(keytool -storetype PKCS12 -storepass "$pw" -keypass "$pw")
  "${kt[@]}" -genkeypair -alias ca -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=adclick test CA" -ext bc:c -keystore "$tlsdir/ca.p12" >/dev/null 2>&1
  "${kt[@]}" -exportcert -rfc -alias ca -keystore "$tlsdir/ca.p12" -file "$tlsdir/ca.pem" >/dev/null 2>&1
  "${kt[@]}" -genkeypair -alias node -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=127.0.0.1" -keystore "$tlsdir/node.p12" >/dev/null 2>&1
  "${kt[@]}" -certreq -alias node -keystore "$tlsdir/node.p12" -file "$tlsdir/node.csr" >/dev/null 2>&1
  "${kt[@]}" -gencert -rfc -alias ca -keystore "$tlsdir/ca.p12" -validity 3650 \
    -ext san=ip:127.0.0.1,dns:localhost -ext eku=serverAuth \
    -infile "$tlsdir/node.csr" -outfile "$tlsdir/node.pem" >/dev/null 2>&1
  # The chain goes in under the key's alias: the CA first, as a trusted entry.
  "${kt[@]}" -importcert -noprompt -alias ca -keystore "$tlsdir/node.p12" -file "$tlsdir/ca.pem" >/dev/null 2>&1
  "${kt[@]}" -importcert -alias node -keystore "$tlsdir/node.p12" -file "$tlsdir/node.pem" >/dev/null 2>&1
  touch "$tlsdir/.complete"
}

# security_yaml prints the secured node's authentication and client
# encryption settings, or the plain node's open ones.
security_yaml() {
  if ((secure == 0)); then
    printf 'authenticator: AllowAllAuthenticator\nauthorizer: AllowAllAuthorizer\n'
    return
  fi
  cat <<YAML
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
client_encryption_options:
  enabled: true
  optional: false
  keystore: $tlsdir/node.p12
  keystore_password: $(cat "$tlsdir/storepass")
  store_type: PKCS12
  require_client_auth: false
YAML
}

# ours says whether pid is this node's java (its command line names the run
# directory): a stale pid file whose pid was reused must not get a signal.
ours() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$run/"
}

stop() {
  if [[ -f "$pidfile" ]]; then
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null && ours "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; sleep 0.5; fi
    fi
    rm -f "$pidfile"
  fi
  rm -f "$addrfile"
  if ((secure)); then rm -f "$pwfile"; fi
}

start() {
  fetch
  stop
  rm -rf "$run"
  mkdir -p "$run"/{data,commitlog,saved_caches,hints,cdc_raw,logs}
  if ((secure)); then
    make_tls
    # The client role's password, new at every start (the data is new too).
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
  fi
  local cql storage
  cql="$(free_port)"
  storage="$(free_port)"
  while [[ "$storage" == "$cql" ]]; do storage="$(free_port)"; done
  cat >"$run/cassandra.yaml" <<YAML
cluster_name: adclick-test
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage
native_transport_port: $cql
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage"
endpoint_snitch: SimpleSnitch
data_file_directories: [$run/data]
commitlog_directory: $run/commitlog
saved_caches_directory: $run/saved_caches
hints_directory: $run/hints
cdc_raw_directory: $run/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
$(security_yaml)
concurrent_reads: 8
concurrent_writes: 16
concurrent_counter_writes: 4
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 16MiB
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
compaction_throughput: 0MiB/s
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 5000ms
request_timeout: 20000ms
materialized_views_enabled: false
sasi_indexes_enabled: false
YAML
  local cp jamm
  cp="$(ls "$home"/lib/*.jar | tr '\n' ':')"
  jamm="$(ls "$home"/lib/jamm-*.jar | head -n 1)"
  # The --add-exports/--add-opens set of Cassandra 5.0's conf/jvm17-server.options.
  local jvm17=(
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.math=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.net=ALL-UNNAMED
  )
  log "starting Cassandra $version$( ((secure)) && echo " (secured: password, TLS only)") on 127.0.0.1:$cql (storage $storage, heap $heap)"
  # setsid: the node gets its own process group, so the caller's job control
  # and signals aimed at the test run do not reach it; stop() ends it by pid.
  setsid java -Xms"$heap" -Xmx"$heap" -Xss512k -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -XX:HeapDumpPath="$run/logs" -XX:ActiveProcessorCount=2 \
    "${jvm17[@]}" \
    -javaagent:"$jamm" \
    -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true \
    -Djava.net.preferIPv4Stack=true \
    -Dcassandra-foreground=yes \
    -Dcassandra.config="file://$run/cassandra.yaml" \
    -Dcassandra.storagedir="$run" \
    -Dcassandra.logdir="$run/logs" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=100 \
    -Dcassandra.initial_token= \
    -Dcassandra.superuser_setup_delay_ms=0 \
    -cp "$cp" org.apache.cassandra.service.CassandraDaemon \
    >"$run/logs/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  local deadline=$((SECONDS + timeout_s))
  until port_open "$cql"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "Cassandra exited during start-up; last lines of its log:"
      tail -n 60 "$run/logs/stdout.log" >&2 || true
      rm -f "$pidfile"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "CQL did not answer on 127.0.0.1:$cql within ${timeout_s}s; last lines of its log:"
      tail -n 60 "$run/logs/stdout.log" >&2 || true
      stop
      exit 1
    fi
    sleep 1
  done
  echo "127.0.0.1:$cql" >"$addrfile"
  log "Cassandra is up at 127.0.0.1:$cql (pid $pid) after ${SECONDS}s"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  start-secure) secure_mode; start ;;
  stop-secure) secure_mode; stop ;;
  *) echo "usage: $0 start|stop|start-secure|stop-secure" >&2; exit 2 ;;
esac
