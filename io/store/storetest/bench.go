package storetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Benchmarks shared by every backend, so their figures compare:
//
//	BenchWriteRaw: raw clicks per second, in WriteRaw batches of batch clicks
//	BenchUpsert:   aggregate records per second (counts and filtered counts
//	               of 1,000 ads), in Upsert batches of batch records
//	BenchCount:    latency of Count over 60 minutes (random ad and start),
//	               reported as p50-µs and p99-µs
//
// Each run writes its own event-time range, so they can share one store.

var benchEpoch = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// BenchWriteRaw measures WriteRaw throughput.
func BenchWriteRaw(b *testing.B, s store.Store, batch int) {
	ctx := context.Background()
	base := benchEpoch*1000 + time.Now().UnixNano()%1e9*1000
	clicks := make([]click.Click, batch)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range clicks {
			k := n + j
			clicks[j] = click.Click{
				EventID: fmt.Sprintf("%016x-bench-event", k), AdID: fmt.Sprintf("ad-%04d", k%1000),
				Time: base + int64(k)*3, UserID: "user-123456", IP: "203.0.113.7", Country: "US", Device: "ios", AdFormat: "banner",
			}
		}
		n += batch
		b.StartTimer()
		if err := s.WriteRaw(ctx, clicks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "clicks/s")
}

// BenchUpsert measures Upsert throughput.
func BenchUpsert(b *testing.B, s store.Store, batch int) {
	ctx := context.Background()
	recs := make([]result.Record, batch)
	cs := make([]result.Count, batch)
	fs := make([]result.FilteredCount, batch)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range recs {
			k := n + j
			m := benchEpoch + int64(k/2000)*60
			if k%2 == 0 {
				cs[j] = result.Count{AdID: fmt.Sprintf("ad-%04d", k/2%1000), Minute: m, Count: int64(k)}
				recs[j] = result.Record{Count: &cs[j]}
			} else {
				fs[j] = result.FilteredCount{AdID: fmt.Sprintf("ad-%04d", k/2%1000), FilterID: "country:US", Minute: m, Count: int64(k)}
				recs[j] = result.Record{Filtered: &fs[j]}
			}
		}
		n += batch
		b.StartTimer()
		if err := s.Upsert(ctx, store.LiveGeneration, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchCount measures Count over 60 minutes on 200 ads × 6 hours of counts.
func BenchCount(b *testing.B, s store.Store) {
	ctx := context.Background()
	base := benchEpoch + 400*86400
	const ads, minutes = 200, 360
	recs := make([]result.Record, 0, ads*minutes)
	for a := 0; a < ads; a++ {
		for m := 0; m < minutes; m++ {
			recs = append(recs, result.Record{Count: &result.Count{AdID: fmt.Sprintf("cad-%03d", a), Minute: base + int64(m)*60, Count: 1}})
		}
	}
	for i := 0; i < len(recs); i += 5000 {
		if err := s.Upsert(ctx, store.LiveGeneration, recs[i:min(i+5000, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ad := fmt.Sprintf("cad-%03d", i*7919%ads)
		from := base + int64(i*31%(minutes-60))*60
		t0 := time.Now()
		n, err := s.Count(ctx, ad, "", from, from+3600)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if n != 60 {
			b.Fatalf("Count = %d, want 60", n)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
