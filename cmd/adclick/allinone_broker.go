package main

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newEmbeddedBroker starts the all-in-one's broker with its log in dir, which
// must be new (kfake reloads what a DataDir holds).
//
// The log is in files, not memory: without DataDir kfake keeps every segment
// in a Go byte slice (its memFS), and the raw topic's retained ten minutes
// (brokerTrim) were two thirds of the all-in-one's live heap at 1,000
// clicks/s, ~175 MB, twice that in RSS with the GC's headroom, still rising
// at 20 minutes: kfake's trimLeft drops a trimmed segment by reslicing its
// segment list, so the segment's bytes stay referenced until that list is
// reallocated. In files they are page cache, which the kernel reclaims; what
// stays in the heap is kfake's per-batch index (aioRawProducerOpts keeps it
// small). TestEmbeddedBrokerOffHeap checks it.
//
// Small segments: kfake deletes a trimmed record only with its whole segment
// (brokerTrim), and its default segment is 100 MB.
//
// A small state log: kfake appends every offset commit to groups.log (~2 MB a
// minute from the all-in-one's three groups) and compacts it only at
// state.log.compact.bytes, by reading the whole file into the heap and
// replaying it; at the default 10 MiB that was a heap spike every ~5 minutes
// which the GC's goal, and so RSS, kept. At 1 MiB it is a small one every
// ~30 s, and the file stays small.
func newEmbeddedBroker(dir string, partitions int32, topics ...string) (*kfake.Cluster, error) {
	return kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.DataDir(dir),
		kfake.BrokerConfigs(map[string]string{
			"log.segment.bytes":       strconv.Itoa(1 << 20),
			"state.log.compact.bytes": strconv.Itoa(1 << 20),
		}))
}

// aioRawLinger is how long the log watcher's producer lets a partition's
// batch fill in the all-in-one (logwatch's own default is 5 ms).
//
// kfake keeps an index entry in the heap for every batch of every record it
// retains (72 bytes, in slices that grow by doubling and that a trim
// reslices, so the arrays of dropped entries stay referenced until the
// slice is reallocated: up to ~4× that). The raw topic is retained for ten
// minutes (brokerTrim), and at 5 ms a batch held one to five clicks at
// 1,000 clicks/s over four partitions: ~130,000 batches, an index that grew
// from 9.7 MB at minute 6 to 21 MB at minute 15, and twice that in RSS. At
// 100 ms a batch holds ~25 clicks, and a click reaches the stream job at
// most 0.1 s later, far inside the dashboard's seconds.
const aioRawLinger = 100 * time.Millisecond

// aioRawProducerOpts are the log watcher's extra producer options in the
// all-in-one (TestEmbeddedBrokerIndexBounded produces with them).
func aioRawProducerOpts() []kgo.Opt {
	return []kgo.Opt{kgo.ProducerLinger(aioRawLinger)}
}
