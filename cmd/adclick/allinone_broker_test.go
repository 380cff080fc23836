package main

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEmbeddedBrokerOffHeap: what the all-in-one's broker retains is not in
// the Go heap. With kfake's default in-memory log, the retained raw topic
// (ten minutes at 1,000 clicks/s) was most of the all-in-one's heap and its
// RSS kept rising for 20 minutes (newEmbeddedBroker); this fails if the log
// goes back to memory (checked: the heap then grows by more than the bytes
// produced).
func TestEmbeddedBrokerOffHeap(t *testing.T) {
	const total = 48 << 20 // bytes produced, in 200-byte records
	c, err := newEmbeddedBroker(filepath.Join(t.TempDir(), "kafka"), 4, "raw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("raw"),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	produce := func(bytes int) {
		rs := make([]*kgo.Record, 0, 5000)
		for n := 0; n < bytes; {
			v := make([]byte, 200)
			for i := range v {
				v[i] = byte(rand.IntN(256)) // incompressible
			}
			rs = append(rs, &kgo.Record{Key: v[:8], Value: v})
			n += len(v)
			if len(rs) == cap(rs) || n >= bytes {
				if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				rs = rs[:0]
			}
		}
	}
	produce(1 << 20) // warm up the client and the broker's partitions
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	produce(total)
	after := heap()
	grew := int64(after) - int64(before)
	t.Logf("produced %d MB; live heap grew by %.1f MB", total>>20, float64(grew)/(1<<20))
	if grew > total/8 {
		t.Fatalf("the broker's live heap grew by %.1f MB for %d MB produced: its log is in memory again", float64(grew)/(1<<20), total>>20)
	}
}

// TestEmbeddedBrokerIndexBounded produces into the all-in-one's embedded
// broker as its log watcher does (the producer options of logwatchConfig,
// records keyed by ad over four partitions) at the all-in-one's default 1,000
// clicks/s, evenly spaced, and counts the batches the broker keeps. kfake
// holds a heap index entry per retained batch and the raw topic is retained
// for ten minutes (brokerTrim), so records per batch is what bounds that
// index: with logwatch's own 5 ms linger the all-in-one's batches held ~5
// clicks and the index grew to 21 MB by minute 15 of a soak (aioRawLinger).
// Evenly spaced records are the worst case for batching; a busy all-in-one's
// log watcher, woken by every acknowledgement, comes close to it. This fails
// if the log watcher's batches get that small again (checked: without
// aioRawProducerOpts, 2.6 records a batch at franz-go's default 10 ms
// linger; 1.7 at logwatch's 5 ms).
func TestEmbeddedBrokerIndexBounded(t *testing.T) {
	const clicks, rate, ads = 4000, 1000, 1000
	dir := t.TempDir()
	c, err := newEmbeddedBroker(filepath.Join(dir, "kafka"), 4, aioRaw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := &allInOne{brokers: c.ListenAddrs(), logPath: filepath.Join(dir, "clicks.jsonl"), stateDir: dir}
	env, _, _ := testEnv("")
	cfg := a.logwatchConfig(env)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic)}, cfg.KafkaOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var failed atomic.Pointer[error]
	value := make([]byte, 200)
	for range clicks {
		key := []byte("ad-" + strconv.Itoa(rand.IntN(ads)))
		cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
		time.Sleep(time.Second / rate)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}

	records, batches := countBatches(t, cl, aioRaw, 4)
	if records != clicks {
		t.Fatalf("the broker holds %d records, want %d", records, clicks)
	}
	perBatch := float64(records) / float64(batches)
	// The raw topic's ten minutes at 1,000 clicks/s, 72 bytes an entry.
	index := 600_000 / perBatch * 72
	t.Logf("%d records in %d batches (%.1f a batch): the raw topic's ten minutes would be a %.1f MB index", records, batches, perBatch, index/(1<<20))
	if perBatch < 8 {
		t.Fatalf("the all-in-one's log watcher producer made batches of %.1f records (want ≥ 8): kfake's index of the raw topic's ten minutes would be %.1f MB, up to four times that with its slack", perBatch, index/(1<<20))
	}
}

// countBatches fetches every partition of topic from its start and counts the
// record batches and records the broker returns.
func countBatches(t *testing.T, cl *kgo.Client, topic string, partitions int32) (records, batches int64) {
	t.Helper()
	topics, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || topics.Error() != nil {
		t.Fatalf("listing %s: %v %v", topic, err, topics.Error())
	}
	for p := range partitions {
		for offset := int64(0); ; {
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis, req.MaxBytes = 0, 64<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, topics[topic].ID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 64<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			part := resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
				t.Fatalf("fetching %s/%d at %d: %v", topic, p, offset, err)
			}
			raw := part.RecordBatches
			if len(raw) == 0 {
				break
			}
			from := offset
			for len(raw) >= 12 {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(raw); err != nil {
					break // a partial batch at the end of the response
				}
				batches++
				records += int64(b.NumRecords)
				offset = b.FirstOffset + int64(b.LastOffsetDelta) + 1
				raw = raw[12+int(b.Length):]
			}
			if offset >= part.HighWatermark {
				break
			}
			if offset == from {
				t.Fatalf("fetching %s/%d at %d: no whole batch in %d bytes", topic, p, offset, len(part.RecordBatches))
			}
		}
	}
	return records, batches
}
