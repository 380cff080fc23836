package pipelines_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/textlines"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/transforms"
)

const benchLines = 1_000_000

var (
	benchOnce sync.Once
	benchPath string
	benchErr  error
)

// benchLog writes, once per process, a generated 1M-line click log: 1000
// Zipf-distributed ads over about 10 minutes of event time, 5% duplicates,
// 2% late and 1% malformed lines.
func benchLog(b *testing.B) string {
	b.Helper()
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "adclick-bench-")
		if err != nil {
			benchErr = err
			return
		}
		benchPath = filepath.Join(dir, "clicks.jsonl")
		f, err := os.Create(benchPath)
		if err != nil {
			benchErr = err
			return
		}
		g, err := clickgen.New(clickgen.Config{Seed: 42, Start: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC),
			EventRate: benchLines / 600, DupShare: 0.05, LateShare: 0.02, MalformedShare: 0.01})
		if err != nil {
			benchErr = err
			return
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for i := 0; i < benchLines; i++ {
			w.Write(g.Next().Data)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			benchErr = err
		}
		if err := f.Close(); err != nil && benchErr == nil {
			benchErr = err
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPath
}

// BenchmarkRecountPipeline is `adclick aggregate` on the 1M-line log: the
// whole bounded pipeline on prism, start-up included, with counts, filtered
// counts and top-N for window sizes 1, 5, 15, 60.
func BenchmarkRecountPipeline(b *testing.B) {
	path := benchLog(b)
	out := filepath.Join(b.TempDir(), "out.jsonl")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, s := beam.NewPipelineWithRoot()
		if err := pipelines.RecountFiles(s, []string{path}, transforms.DefaultConfig(), out, ""); err != nil {
			b.Fatal(err)
		}
		if _, err := runners.Run(context.Background(), p, runners.Options{Runner: runners.Prism}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPlainLoop is the baseline: one goroutine, the same line reader and
// parser, a map of seen event ids, and the per-(ad, minute) and per-filter
// counts in maps. No top-N, no Beam.
func BenchmarkPlainLoop(b *testing.B) {
	path := benchLog(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
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
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		err = textlines.Scan(context.Background(), f, textlines.DefaultBatchLines, func(lines [][]byte) error {
			for _, l := range lines {
				c, err := p.Parse(l)
				if err != nil {
					continue
				}
				if _, dup := seen[c.EventID]; dup {
					continue
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
			}
			return nil
		})
		f.Close()
		if err != nil || len(counts) == 0 {
			b.Fatal(err, len(counts))
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
