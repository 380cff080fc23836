package pipelines_test

import (
	"bufio"
	"context"
	"os"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/transforms"
)

// loadBenchStore writes the valid clicks of the first n lines of the
// generated 1M-line bench log (benchLog) into the raw store, outside the
// timer, and returns how many unique clicks it holds.
func loadBenchStore(b *testing.B, cfg backend.Config, n int) int64 {
	b.Helper()
	f, err := os.Open(benchLog(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st := openStore(b, cfg)
	ctx := context.Background()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	var p click.Parser
	seen := map[string]bool{}
	batch := make([]click.Click, 0, 5000)
	for i := 0; i < n && sc.Scan(); i++ {
		c, err := p.Parse(sc.Bytes())
		if err != nil {
			continue
		}
		seen[c.EventID] = true
		if batch = append(batch, c); len(batch) == cap(batch) {
			if err := st.WriteRaw(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := st.WriteRaw(ctx, batch); err != nil {
		b.Fatal(err)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return int64(len(seen))
}

// benchReplay replays the whole bench range (every stored click; the read
// starts 59 minutes earlier for the 60-minute top-N windows): read from the
// store, the batch composite with window sizes 1, 5, 15, 60, the upsert of
// every record into a new generation and its commit — start-up included.
// events/s = unique stored clicks replayed per second.
func benchReplay(b *testing.B, cfg backend.Config, lines int) {
	clicks := loadBenchStore(b, cfg, lines)
	from := time.Date(2024, 1, 1, 9, 50, 0, 0, time.UTC)
	to := from.Add(30 * time.Minute)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := pipelines.Replay(context.Background(), pipelines.ReplayOptions{Store: cfg, From: from, To: to, Config: transforms.DefaultConfig()})
		if err != nil {
			b.Fatal(err)
		}
		if res.ClicksRead != clicks {
			b.Fatalf("replay read %d clicks, want the %d stored", res.ClicksRead, clicks)
		}
	}
	b.ReportMetric(float64(clicks)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplayPebble replays the 1M-line log's clicks from the embedded
// store. Compare with BenchmarkPlainLoop (same log, same run).
func BenchmarkReplayPebble(b *testing.B) { benchReplay(b, pebbleStore(b), benchLines) }

// BenchmarkReplayCassandra replays the first 200,000 lines' clicks from the
// real Cassandra (loading all 1M lines at its single-node write rate would
// take minutes before the timer starts).
func BenchmarkReplayCassandra(b *testing.B) { benchReplay(b, cassandraStore(b), 200_000) }
