// Package drills holds the fault drills: end-to-end tests (test files only)
// that run a generated click stream with ground truth through the real
// processes (`adclick logwatcher` → Kafka raw topic → `adclick stream` →
// results topic → `adclick dbwriter --kind results` → store) while a fault is
// injected, and end comparing the stored results with an independent recount
// of the log: exact, too-late clicks excepted (docs/spec.md §2 defines the
// counts and too-late clicks, §5 what a store keeps).
//
// The drills: SIGKILL of each process, 5 times each at random moments; the
// Kafka broker stopped for 30 s and the store (Cassandra) under the DB writer
// for 60 s, each restarted on its port and data (private servers, so that
// other packages' tests on the shared ones are not disturbed); and a full
// disk under the log watcher's state file and the Pebble store for 20 s
// (small tmpfs mounts, so this drill needs root), after which what stopped
// with a clear error is restarted, as a supervisor would; and a log three
// days old, older than the raw topic's retention, published and read only
// after the broker's next retention check (up to 5 minutes away). Each
// reports its run time.
//
// They need what `make test` provides (testing/testenv/run.sh): a real Kafka
// (ADCLICK_TEST_KAFKA_BROKERS), and Java with the jars that
// testing/testenv/kafka.sh and cassandra.sh fetch (linked from the shared
// ADCLICK_TESTENV_DIR when present); they fail, not skip, when a server cannot
// start. The adclick binary is built once per run (ADCLICK_DRILL_BIN names a
// prebuilt one); ADCLICK_DRILL_SEED repeats a fault schedule and
// ADCLICK_DRILL_BREAK_TRUTH=1 adds one click to the expected counts, to see a
// drill fail.
package drills
