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

// benchTraffic is one shape of the benchmark log: the generator's default
// 1,000 ads, and the seed's cardinality (2M ads), Zipf-distributed (about
// 155k distinct per 1M clicks) and uniform (about 1M distinct).
type benchTraffic struct {
	name    string
	ads     int
	uniform bool
}

var benchTraffics = []benchTraffic{{"ads1000", 1000, false}, {"zipf2M", 2_000_000, false}, {"uniform2M", 2_000_000, true}}

var (
	benchMu    sync.Mutex
	benchPath  string // the directory of every generated log, removed by TestMain
	benchPaths = map[string]string{}
)

// benchLog writes, once per process and traffic, a generated 1M-line click
// log: about 10 minutes of event time, 5% duplicates, 2% late and 1%
// malformed lines. The 1,000-ad log is the one of every earlier figure.
func benchLog(b *testing.B, tr ...benchTraffic) string {
	b.Helper()
	t := benchTraffics[0]
	if len(tr) > 0 {
		t = tr[0]
	}
	benchMu.Lock()
	defer benchMu.Unlock()
	if p, ok := benchPaths[t.name]; ok {
		return p
	}
	p, err := writeBenchLog(t)
	if err != nil {
		b.Fatal(err)
	}
	benchPaths[t.name] = p
	return p
}

func writeBenchLog(t benchTraffic) (path string, err error) {
	if benchPath == "" {
		dir, err := os.MkdirTemp("", "adclick-bench-")
		if err != nil {
			return "", err
		}
		benchPath = filepath.Join(dir, "clicks.jsonl")
	}
	path = filepath.Join(filepath.Dir(benchPath), t.name+".jsonl")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	g, err := clickgen.New(clickgen.Config{Seed: 42, Ads: t.ads, Uniform: t.uniform, Start: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC),
		EventRate: benchLines / 600, DupShare: 0.05, LateShare: 0.02, MalformedShare: 0.01})
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for range benchLines {
		w.Write(g.Next().Data)
		w.WriteByte('\n')
	}
	return path, w.Flush()
}

// BenchmarkRecountPipeline is `adclick aggregate` on a 1M-line log of each
// traffic: the whole bounded pipeline on prism, start-up included, with
// counts, filtered counts and top-N for window sizes 1, 5, 15, 60. Compare
// the 2M-ad traffics with ads1000 of the same run.
func BenchmarkRecountPipeline(b *testing.B) {
	for _, tr := range benchTraffics {
		b.Run(tr.name, func(b *testing.B) { benchRecount(b, tr, transforms.DefaultConfig()) })
	}
}

// BenchmarkRecountDigests is BenchmarkRecountPipeline's 1,000-ad and 2M-ad
// Zipf logs with the records' digests and without them
// (transforms.Config.WithoutDigests), in one run: what digests cost.
func BenchmarkRecountDigests(b *testing.B) {
	for _, tr := range benchTraffics[:2] {
		for _, without := range []bool{false, true} {
			cfg := transforms.DefaultConfig()
			cfg.WithoutDigests = without
			name := tr.name + "/with"
			if without {
				name = tr.name + "/without"
			}
			b.Run(name, func(b *testing.B) { benchRecount(b, tr, cfg) })
		}
	}
}

func benchRecount(b *testing.B, tr benchTraffic, cfg transforms.Config) {
	path := benchLog(b, tr)
	out := filepath.Join(b.TempDir(), "out.jsonl")
	b.ResetTimer()
	for range b.N {
		p, s := beam.NewPipelineWithRoot()
		if err := pipelines.RecountFiles(s, []string{path}, cfg, out, ""); err != nil {
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
