// Package storetest is the conformance suite every store.Store backend
// passes: the same tests and expectations for the embedded Pebble store and
// for Cassandra, plus shared benchmarks. It is test support code, imported
// only by the backends' _test.go files.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openMyStore(t) })
//	}
//
// newStore is called once per subtest; it may return a fresh store or one
// shared by all subtests (a Cassandra keyspace is slow to create). The suite
// isolates subtests itself: each writes its own days of event time and its own
// top-N window sizes, so subtests run in parallel on one shared store. The
// store must implement store.Lifecycle too: retention and garbage collection
// subtests run first, one at a time. A store
// returned by newStore is closed by the suite through t.Cleanup only if the
// factory registers that itself.
package storetest

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adclick/adclick/io/store"
)

// Factory returns the store under test for one subtest.
type Factory func(t *testing.T) store.Store

// space hands every subtest its own event-time days and window sizes.
type space struct {
	day    atomic.Int64
	window atomic.Int64
	epoch  int64
}

func (sp *space) base() int64 { return sp.epoch + sp.day.Add(2)*86400 } // 2 days each
func (sp *space) win() int    { return int(sp.window.Add(1)) }

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	// A random epoch day within 2030–2090 keeps repeated runs on a persistent
	// store apart too.
	sp := &space{epoch: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + rand.Int64N(20000)*86400}
	sp.window.Store(1000 + rand.Int64N(1<<20))
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store, *space)
	}{
		{"Ping", testPing},
		{"RawRoundTripAndIdempotent", testRawIdempotent},
		{"RawShardsCoverExactlyOnce", testRawShards},
		{"RawInvalid", testRawInvalid},
		{"RawReadByAd", testRawReadByAd},
		{"UnicodeAndMaxLengthIDs", testUnicodeIDs},
		{"UpsertOverwrites", testOverwrite},
		{"MergeKeepsTheLarger", testMerge},
		{"CountRangeEdges", testCountRange},
		{"CountInvalid", testCountInvalid},
		{"FilteredVsUnfiltered", testFiltered},
		{"UpsertInvalidWritesNothing", testUpsertInvalid},
		{"ConcurrentWriters", testConcurrentWriters},
		{"LargeRange", testLargeRange},
		{"TopAndLatestTopMinute", testTop},
		{"ScanCounts", testScanCounts},
		{"DigestsRoundTrip", testDigests},
		{"Generations", testGenerations},
		{"GenerationTopsReachFurther", testGenerationTops},
		{"GenerationInvalid", testGenerationInvalid},
		{"GenerationSwitchWhileReading", testGenerationSwitch},
		{"ContextEnds", testContextEnds},
		{"TooLate", testTooLate},
	}
	// The lifecycle subtests delete and collect across the whole store, so
	// they run one at a time, before the parallel ones start (when Run
	// returns) on later days.
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store, *space)
	}{
		{"RawRetention", testRawRetention},
		{"TooLateRetention", testTooLateRetention},
		{"AggregateRetention", testAggregateRetention},
		{"GCAfterReplay", testGCAfterReplay},
		{"GCKilledMidwayConverges", testGCKilledMidway},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t), sp) })
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t), sp)
		})
	}
}
