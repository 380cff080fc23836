package streambench

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/services/dbwriter"
)

// BenchmarkRawWriter is the raw-store DB writer (services/dbwriter, kind raw) on
// a backlog: a fresh consumer group reads the whole pre-filled raw topic of
// the real Kafka and writes every valid click into a fresh Pebble store
// (default options, NoSync), committing offsets after each acknowledged batch.
//
// Metrics: rows/s = valid clicks / (writer start → the group has committed
// the topic's end on every partition); plain_rows/s = the baseline in the same
// run: one goroutine consuming the same topic with franz-go, parsing with
// click.Parser and calling the store's WriteRaw directly with batches of
// 5,000 (the writer's default) — no group, no commits; ratio = rows/s ÷
// plain_rows/s.
func BenchmarkRawWriter(b *testing.B) {
	brokers := brokersOf(b)
	f := prefilled(b, brokers, traffics[0])
	admc, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer admc.Close()
	adm := kadm.NewClient(admc)
	b.Logf("load average before: %s", loadavg())

	var writerTime, plainTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if n := plainRaw(b, brokers, f.topic); n != f.valid {
			b.Fatalf("plain loop wrote %d rows, want %d", n, f.valid)
		}
		plainTime += time.Since(t0)

		st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		group := f.topic + "-raw-" + time.Now().Format("150405.000000000")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		done := make(chan error, 1)
		t0 = time.Now()
		go func() {
			done <- dbwriter.Run(ctx, dbwriter.Config{Brokers: brokers, Topic: f.topic, Group: group, Kind: dbwriter.Raw}, st)
		}()
		if err := waitCommitted(ctx, adm, group, f.topic); err != nil {
			b.Fatal(err)
		}
		writerTime += time.Since(t0)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
	rate := func(d time.Duration) float64 { return float64(f.valid) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(writerTime), "rows/s")
	b.ReportMetric(rate(plainTime), "plain_rows/s")
	b.ReportMetric(rate(writerTime)/rate(plainTime), "ratio")
	b.Logf("%d records, %d valid rows; writer %v, plain loop %v per run; load average after: %s",
		f.lines, f.valid, writerTime/time.Duration(b.N), plainTime/time.Duration(b.N), loadavg())
}

// plainRaw consumes the topic once and writes its valid clicks straight into
// a fresh Pebble store in batches of 5,000; it returns the rows written.
func plainRaw(b *testing.B, brokers []string, topic string) int {
	st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var p click.Parser
	batch := make([]click.Click, 0, 5000)
	rows := 0
	var werr error
	flush := func() {
		if len(batch) == 0 || werr != nil {
			return
		}
		werr = st.WriteRaw(ctx, batch)
		rows += len(batch)
		batch = batch[:0]
	}
	if _, err := consumeAll(ctx, brokers, topic, func(r *kgo.Record) {
		c, err := p.Parse(r.Value)
		if err != nil {
			return
		}
		if batch = append(batch, c); len(batch) == cap(batch) {
			flush()
		}
	}); err != nil {
		b.Fatal(err)
	}
	flush()
	if werr != nil {
		b.Fatal(werr)
	}
	return rows
}
