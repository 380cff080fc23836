package streambench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/runners"
)

var readOnlyLines atomic.Int64

func countLinesFn(l click.Lines) { readOnlyLines.Add(int64(len(l.Lines))) }

func init() { register.Function1x0(countLinesFn) }

// BenchmarkReadOnly is the Kafka source alone on the aggregation
// benchmark's 1,000-ad topic, on prism: what the reader delivers with no
// aggregation, start-up included — the ceiling BenchmarkStreamAggregation
// is measured against besides the plain loop.
func BenchmarkReadOnly(b *testing.B) {
	brokers := brokersOf(b)
	f := prefilled(b, brokers, traffics[0])
	var d time.Duration
	for i := 0; i < b.N; i++ {
		readOnlyLines.Store(0)
		p, s := beam.NewPipelineWithRoot()
		beam.ParDo0(s, countLinesFn, kafkaio.Read(s, kafkaio.ReadConfig{Brokers: brokers, Topic: f.topic, EndOffsets: true}))
		t0 := time.Now()
		if _, err := runners.Run(context.Background(), p, runners.Options{Runner: runners.Prism}); err != nil {
			b.Fatal(err)
		}
		d += time.Since(t0)
		if n := readOnlyLines.Load(); n != int64(f.lines) {
			b.Fatalf("read %d lines, want %d", n, f.lines)
		}
	}
	b.ReportMetric(float64(f.lines*b.N)/d.Seconds(), "events/s")
}
