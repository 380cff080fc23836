package main

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
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
