package streambench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/transforms"
)

// BenchmarkStreamAggregation is the aggregation path on a backlog: the
// streaming job (pipelines.Stream on prism, default aggregation config:
// counts, filtered counts, top-100 for windows 1, 5, 15, 60) reads the
// pre-filled raw topic of the real Kafka bounded (kafkaio.ReadConfig
// EndOffsets), writes results and dead letters to fresh topics, and the
// results DB writer (services/dbwriter) upserts them into a fresh Pebble store while
// the job runs.
//
// Metrics: events/s = raw records / (job start → job end, every result in
// the results topic); store_events/s = raw records / (job start → the DB
// writer has committed the whole results topic); plain_events/s = the
// baseline in the same run: one goroutine consuming the same topic with
// franz-go, parsing with click.Parser, dedup by event id in a map, counts per
// (ad, minute) and per filter in maps — no top-N, no watermark, no output;
// ratio = events/s ÷ plain_events/s. After each run the stored unfiltered
// counts must sum to the unique valid clicks minus the too-late ones.
//
// One sub-benchmark per traffic: 1,000 Zipf ads, and 2M ads Zipf and uniform.
func BenchmarkStreamAggregation(b *testing.B) {
	for _, tr := range traffics {
		b.Run(tr.name, func(b *testing.B) { benchStreamAggregation(b, tr, false) })
	}
}

// BenchmarkStreamDigests is BenchmarkStreamAggregation's 1,000-ad and 2M-ad
// Zipf traffic with the count records' digests and without them
// (transforms.Config.WithoutDigests), in one run: what digests cost.
func BenchmarkStreamDigests(b *testing.B) {
	for _, tr := range traffics[:2] {
		for _, without := range []bool{false, true} {
			name := tr.name + "/with"
			if without {
				name = tr.name + "/without"
			}
			b.Run(name, func(b *testing.B) { benchStreamAggregation(b, tr, without) })
		}
	}
}

func benchStreamAggregation(b *testing.B, tr traffic, withoutDigests bool) {
	brokers := brokersOf(b)
	f := prefilled(b, brokers, tr)
	admc, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer admc.Close()
	adm := kadm.NewClient(admc)
	b.Logf("load average before: %s", loadavg())

	var jobTime, storeTime, plainTime time.Duration
	var resultRecords int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The baseline, in the same run.
		t0 := time.Now()
		n, unique := plainAggregate(b, brokers, f.topic)
		plainTime += time.Since(t0)
		if n != f.lines || unique != f.unique {
			b.Fatalf("plain loop read %d records, %d unique clicks; want %d, %d", n, unique, f.lines, f.unique)
		}

		res := newTopic(b, brokers, "results", rawPartitions)
		dead := newTopic(b, brokers, "dead", 1)
		group := res + "-dbwriter"
		st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		wctx, stopWriter := context.WithCancel(context.Background())
		wdone := make(chan error, 1)
		go func() {
			wdone <- dbwriter.Run(wctx, dbwriter.Config{Brokers: brokers, Topic: res, Group: group, Kind: dbwriter.Results}, st)
		}()

		cfg := transforms.DefaultConfig()
		cfg.Streaming = true
		cfg.WithoutDigests = withoutDigests
		scfg := pipelines.StreamConfig{
			Raw:         kafkaio.ReadConfig{Brokers: brokers, Topic: f.topic, EndOffsets: true},
			Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
			DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
			Aggregation: cfg,
		}
		if v := os.Getenv("ADCLICK_BENCH_ADVANCE"); v != "" { // experiments only
			scfg.Raw.MaxBundleAdvance, _ = time.ParseDuration(v)
		}
		t0 = time.Now()
		p, s := beam.NewPipelineWithRoot()
		if err := pipelines.Stream(s, scfg); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if _, err := runners.Run(ctx, p, runners.Options{Runner: runners.Prism}); err != nil {
			b.Fatal(err)
		}
		jobTime += time.Since(t0)
		if err := waitCommitted(ctx, adm, group, res); err != nil {
			b.Fatal(err)
		}
		storeTime += time.Since(t0)
		if ends, err := endOffsets(ctx, adm, res); err == nil {
			var n int64
			for _, e := range ends {
				n += e
			}
			resultRecords += n
		}
		cancel()
		stopWriter()
		if err := <-wdone; err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		total, err := storedClicks(st, f.from, f.to)
		if err != nil {
			b.Fatal(err)
		}
		if want := int64(f.unique - f.tooLate); total != want {
			b.Errorf("stored unfiltered counts sum to %d, want %d (unique %d − too late %d)", total, want, f.unique, f.tooLate)
		}
		st.Close()
		b.StartTimer()
	}
	rate := func(d time.Duration) float64 { return float64(f.lines) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(jobTime), "events/s")
	b.ReportMetric(rate(storeTime), "store_events/s")
	b.ReportMetric(rate(plainTime), "plain_events/s")
	b.ReportMetric(rate(jobTime)/rate(plainTime), "ratio")
	b.ReportMetric(float64(resultRecords)/float64(f.lines*b.N), "results/event")
	b.Logf("%d records (%d valid, %d unique, %d too late); job %v, to store %v, plain loop %v per run; load average after: %s",
		f.lines, f.valid, f.unique, f.tooLate, jobTime/time.Duration(b.N), storeTime/time.Duration(b.N), plainTime/time.Duration(b.N), loadavg())
}

// plainAggregate is the baseline: the topic consumed from the start to its
// current end, every line parsed, deduplicated by event id and counted per
// (ad, minute) and per (ad, minute, filter), in one goroutine.
func plainAggregate(b *testing.B, brokers []string, topic string) (records, unique int) {
	type key struct {
		ad     string
		minute int64
	}
	type fkey struct {
		key
		filter string
	}
	var p click.Parser
	seen := map[string]struct{}{}
	counts := map[key]int64{}
	filtered := map[fkey]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := consumeAll(ctx, brokers, topic, func(r *kgo.Record) {
		c, err := p.Parse(r.Value)
		if err != nil {
			return
		}
		if _, dup := seen[c.EventID]; dup {
			return
		}
		seen[c.EventID] = struct{}{}
		k := key{c.AdID, c.Minute()}
		counts[k]++
		if c.Country != "" {
			filtered[fkey{k, "country:" + c.Country}]++
		}
		if c.Device != "" {
			filtered[fkey{k, "device:" + c.Device}]++
		}
		if c.AdFormat != "" {
			filtered[fkey{k, "format:" + c.AdFormat}]++
		}
	})
	if err != nil || len(counts) == 0 {
		b.Fatal(err, len(counts))
	}
	return n, len(seen)
}

// storedClicks sums the stored unfiltered counts of the minutes [from, to).
func storedClicks(st store.Store, from, to int64) (int64, error) {
	var total int64
	err := st.ScanCounts(context.Background(), from-3600, to+3600, func(r result.Record) error {
		if r.Count != nil {
			total += r.Count.Count
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("scanning the stored counts: %w", err)
	}
	return total, nil
}
