// Package streambench holds the streaming benchmarks and nothing
// else (it has no non-test code): sustained events/s of the streaming job
// (pipelines.Stream on prism) reading a pre-filled topic of a real Kafka
// through the aggregation path into the embedded store, rows/s of the raw-store
// DB writer, and freshness — a click written to the log until it is visible in
// the store — at a steady generated rate, each beside a plain-loop baseline
// measured in the same run. The figures and how to reproduce them are in
// BENCHMARKS.md ("Streaming"); the benchmarks need the real Kafka that
// testing/testenv/run.sh starts:
//
//	testing/testenv/run.sh go test -run '^$' -bench . -benchtime 1x ./pipelines/streambench/
package streambench
