package pebblestore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// BenchmarkDBWriterPath is the results DB writer's work per record at the
// seed's cardinality — parse the topic's JSON, merge into Pebble in batches
// of 5,000, sync — with and without digests: what a digest costs the store
// side (BenchmarkStreamDigests measures the whole path, much more noisily).
// 1.2M records, a 1M-click run's worth at 2M ads.
func BenchmarkDBWriterPath(b *testing.B) {
	for _, form := range []string{"with", "with_hex", "without"} {
		b.Run(form, func(b *testing.B) {
			lines := digestCostLines(1_200_000, form)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				s := open(b)
				b.StartTimer()
				recs := make([]result.Record, 0, 5000)
				for i, l := range lines {
					var r result.Record
					if err := r.UnmarshalJSON(l); err != nil {
						b.Fatal(err)
					}
					recs = append(recs, r)
					if len(recs) == cap(recs) || i == len(lines)-1 {
						if err := s.Merge(context.Background(), store.LiveGeneration, recs); err != nil {
							b.Fatal(err)
						}
						recs = recs[:0]
					}
				}
				if err := s.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			recs := float64(b.N * len(lines))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/recs, "ns/record")
			// CPU, Pebble's background flushes and compactions included: on
			// a shared machine steadier than the elapsed time.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/recs, "cpu_ns/record")
		})
	}
}

// digestCostLines makes n results as the streaming job writes them at 2M
// ads: one count and three filtered counts per (ad, minute), each once;
// form is "with" (digests as the job writes them, compact), "with_hex" (as
// it wrote them before) or "without".
func digestCostLines(n int, form string) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	minute := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Unix()
	out := make([][]byte, 0, n)
	for len(out) < n {
		ad := fmt.Sprintf("ad-%07d", rng.IntN(2_000_000))
		m := minute + int64(rng.IntN(10))*60
		for _, f := range []string{"", "country:US", "device:mobile", "format:banner"} {
			var d result.Digest
			if form != "without" {
				d = result.Digest{Hi: rng.Uint64(), Lo: rng.Uint64(), Known: true}
			}
			var r result.Record
			if f == "" {
				r.Count = &result.Count{AdID: ad, Minute: m, Count: 1, Digest: d}
			} else {
				r.Filtered = &result.FilteredCount{AdID: ad, FilterID: f, Minute: m, Count: 1, Digest: d}
			}
			if form == "with_hex" {
				out = append(out, r.AppendJSON(nil))
			} else {
				out = append(out, r.AppendTopicJSON(nil))
			}
		}
	}
	return out
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
