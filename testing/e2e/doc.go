// Package e2e is the harness the end-to-end tests share (the crash tests in
// cmd/adclick and the fault drills in testing/drills): restartable adclick
// processes with their logs, the Kafka offsets they are judged by, the
// results topic as a DB writer would store it, and a store read back as
// reference results.
package e2e
