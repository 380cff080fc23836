// Package testenv gives integration tests the real servers that
// testing/testenv/run.sh started for them (Apache Kafka and Apache Cassandra, on
// 127.0.0.1), and fails a test when its server is missing.
//
// A test that needs a server must fail, not skip, when it is absent: CI runs
// everything. ADCLICK_SKIP_INTEGRATION=1 skips them for a fast local loop and is
// refused when CI=true.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// Environment variables run.sh exports.
const (
	EnvKafka     = "ADCLICK_TEST_KAFKA_BROKERS"   // host:port[,host:port]
	EnvCassandra = "ADCLICK_TEST_CASSANDRA_HOSTS" // host:port[,host:port]
	EnvSkip      = "ADCLICK_SKIP_INTEGRATION"
)

// Kafka returns the real broker addresses, or ends the test.
func Kafka(t testing.TB) []string { return need(t, EnvKafka, "Apache Kafka") }

// Cassandra returns the real node addresses, or ends the test.
func Cassandra(t testing.TB) []string { return need(t, EnvCassandra, "Apache Cassandra") }

func need(t testing.TB, env, what string) []string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return strings.Split(v, ",")
	}
	if os.Getenv(EnvSkip) == "1" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s=1 is not allowed in CI: integration tests must run", EnvSkip)
		}
		t.Skipf("%s not running and %s=1: skipping integration test", what, EnvSkip)
	}
	t.Fatalf("%s is needed but %s is not set: run the tests through `make test` "+
		"(testing/testenv/run.sh starts the servers), or set %s=1 to skip integration tests locally", what, env, EnvSkip)
	return nil
}
