package kafkaio

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register.Function1x1[click.Lines, int](countLines)
}

func countLines(b click.Lines) int { return len(b.Lines) }

// BenchmarkRead compares records/s read through the SDF (prism, bounded mode,
// pipeline start included) with a plain franz-go consumer loop reading the
// same pre-filled kfake topic in the same run. Compare the two records/s
// figures; absolute numbers mean little on a shared 2-core machine.
func BenchmarkRead(b *testing.B) {
	const partitions, perPartition = 4, 100_000
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench", "empty"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ts := time.Now().Add(-time.Hour).UnixMilli()
	var recs []rec
	for i := range partitions * perPartition {
		line := fmt.Sprintf(`{"event_id":"e%09d","ad_id":"ad%d","timestamp":%d,"user_id":"u%d","ip":"10.0.0.1","country":"US","device":"mobile","ad_format":"banner"}`,
			i, i%1000, ts+int64(i/100), i%50000)
		recs = append(recs, rec{partition: int32(i % partitions), ts: ts + int64(i/100), value: line})
	}
	produce(b, brokers, "bench", recs)
	total := len(recs)

	sdf := func(b *testing.B, topic string, want int) {
		for b.Loop() {
			p, s := beam.NewPipelineWithRoot()
			n := stats.Sum(s, beam.ParDo(s, countLines, Read(s, ReadConfig{Brokers: brokers, Topic: topic, EndOffsets: true})))
			if want > 0 {
				passert.Equals(s, n, want)
			}
			if err := ptest.Run(p); err != nil {
				b.Fatal(err)
			}
		}
		if want > 0 {
			b.ReportMetric(float64(want*b.N)/b.Elapsed().Seconds(), "records/s")
		}
	}
	// The same pipeline on an empty topic: its time per op is the fixed cost
	// (job submission, worker start) included in the sdf figure.
	b.Run("sdf empty topic", func(b *testing.B) { sdf(b, "empty", 0) })
	b.Run("sdf", func(b *testing.B) { sdf(b, "bench", total) })
	b.Run("franz-go loop", func(b *testing.B) {
		for b.Loop() {
			offs := map[int32]kgo.Offset{}
			for p := range int32(partitions) {
				offs[p] = kgo.NewOffset().AtStart()
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bench": offs}),
				kgo.FetchMaxBytes(16<<20), kgo.FetchMaxPartitionBytes(16<<20))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n := 0
			for n < total {
				fs := cl.PollRecords(ctx, 10_000)
				if err := ctx.Err(); err != nil {
					b.Fatalf("read %d of %d: %v", n, total, err)
				}
				n += fs.NumRecords()
			}
			cancel()
			cl.Close()
		}
		b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
