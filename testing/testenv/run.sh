#!/usr/bin/env bash
# Starts the real servers the integration tests need (Apache Kafka and Apache
# Cassandra, fetched from Maven Central by kafka.sh and cassandra.sh, on
# 127.0.0.1 only), exports their addresses, runs the given command, and stops
# them whatever happens. Usage: testing/testenv/run.sh go test ./...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ADCLICK_TESTENV_DIR="${ADCLICK_TESTENV_DIR:-$here/../../.cache/testenv}"
mkdir -p "$ADCLICK_TESTENV_DIR"

if [[ "${ADCLICK_SKIP_INTEGRATION:-}" == "1" ]]; then
  if [[ "${CI:-}" == "true" ]]; then echo "run.sh: ADCLICK_SKIP_INTEGRATION=1 is not allowed in CI" >&2; exit 2; fi
  exec "$@"
fi

started=()
cleanup() {
  local s
  for s in "${started[@]}"; do "$here/$s.sh" stop || true; done
  # The secured Kafka (SASL_SSL) is started by the first test that needs it
  # (testenv.SecureKafka), not here: runs without such a test do not pay
  # its start. It is stopped here whoever started it.
  "$here/kafka.sh" stop-secure || true
  # The same for the secured Cassandra (testenv.SecureCassandra).
  "$here/cassandra.sh" stop-secure || true
}
trap cleanup EXIT INT TERM

for s in kafka cassandra; do
  if [[ -x "$here/$s.sh" ]]; then
    "$here/$s.sh" start
    started+=("$s")
  fi
done
[[ -f "$ADCLICK_TESTENV_DIR/kafka.addr" ]] && export ADCLICK_TEST_KAFKA_BROKERS="$(cat "$ADCLICK_TESTENV_DIR/kafka.addr")"
[[ -f "$ADCLICK_TESTENV_DIR/cassandra.addr" ]] && export ADCLICK_TEST_CASSANDRA_HOSTS="$(cat "$ADCLICK_TESTENV_DIR/cassandra.addr")"
"$@"
