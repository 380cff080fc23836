package streambench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
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
		b.Run(tr.name, func(b *testing.B) { benchStreamAggregation(b, tr) })
	}
}

// BenchmarkStreamDigests is BenchmarkStreamAggregation's 1,000-ad and 2M-ad
// Zipf traffic with the count records' digests and without them
// (transforms.Config.WithoutDigests): what digests cost. Each iteration runs
// one pair, alternating which goes first (the machine's load and a process's
// warm-up then weigh on both alike). Metrics per variant: events/s (job),
// store_events/s, cpu_s/run (this process — the job's workers, prism and the
// DB writer — from job start to stored) and result_B/rec (the results
// topic's bytes on the broker, compressed, per record); cost_% = 1 −
// events/s with ÷ without.
func BenchmarkStreamDigests(b *testing.B) {
	for _, tr := range traffics[:2] {
		b.Run(tr.name, func(b *testing.B) {
			brokers := brokersOf(b)
			f := prefilled(b, brokers, tr)
			adm := newAdmin(b, brokers)
			b.Logf("load average before: %s", loadavg())
			var runs [2]streamRun // with, without
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range 2 {
					without := (i+j)%2 == 1
					r := runStream(b, brokers, adm, f, without)
					runs[btoi(without)].add(r)
					b.Logf("pair %d: %s %s", i, map[bool]string{false: "with   ", true: "without"}[without], r.summary(f.lines))
				}
			}
			n := float64(f.lines) * float64(b.N)
			for k, name := range []string{"with", "without"} {
				r := runs[k]
				b.ReportMetric(n/r.job.Seconds(), name+"_events/s")
				b.ReportMetric(n/r.store.Seconds(), name+"_store_events/s")
				b.ReportMetric(r.cpu.Seconds()/float64(b.N), name+"_cpu_s/run")
				b.ReportMetric(float64(r.bytes)/float64(r.records), name+"_result_B/rec")
			}
			b.ReportMetric(100*(1-runs[1].job.Seconds()/runs[0].job.Seconds()), "cost_%")
			b.Logf("load average after: %s", loadavg())
		})
	}
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

func benchStreamAggregation(b *testing.B, tr traffic) {
	brokers := brokersOf(b)
	f := prefilled(b, brokers, tr)
	adm := newAdmin(b, brokers)
	b.Logf("load average before: %s", loadavg())

	var plainTime time.Duration
	var runs streamRun
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The baseline, in the same run.
		t0 := time.Now()
		n, unique := plainAggregate(b, brokers, f.topic)
		plainTime += time.Since(t0)
		if n != f.lines || unique != f.unique {
			b.Fatalf("plain loop read %d records, %d unique clicks; want %d, %d", n, unique, f.lines, f.unique)
		}
		runs.add(runStream(b, brokers, adm, f, false))
	}
	rate := func(d time.Duration) float64 { return float64(f.lines) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(runs.job), "events/s")
	b.ReportMetric(rate(runs.store), "store_events/s")
	b.ReportMetric(rate(plainTime), "plain_events/s")
	b.ReportMetric(rate(runs.job)/rate(plainTime), "ratio")
	b.ReportMetric(float64(runs.records)/float64(f.lines*b.N), "results/event")
	b.Logf("%d records (%d valid, %d unique, %d too late); job %v, to store %v, plain loop %v per run; load average after: %s",
		f.lines, f.valid, f.unique, f.tooLate, runs.job/time.Duration(b.N), runs.store/time.Duration(b.N), plainTime/time.Duration(b.N), loadavg())
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
