package transforms_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/transforms"
)

func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

// generate returns n generated lines (copies) and the generator's truth.
func generate(t *testing.T, n int, cfg clickgen.Config) ([][]byte, *clickgen.Truth) {
	t.Helper()
	lines, truth, err := clickgen.Lines(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lines, truth
}

func batchesOf(lines [][]byte, size int, wm int64) []click.Lines {
	var out []click.Lines
	for i := 0; i < len(lines); i += size {
		out = append(out, click.Lines{Lines: lines[i:min(i+size, len(lines))], Watermark: wm})
	}
	return out
}

// collectParts collects each part separately (streaming outputs are not
// flattened).
func collectParts(t *testing.T, p *beam.Pipeline, parts []beam.PCollection, s beam.Scope) func() []result.Record {
	var reads []func() []result.Record
	for i, pc := range parts {
		reads = append(reads, collect(t, p, []beam.PCollection{pc}, s.Scope(fmt.Sprint("part", i))))
	}
	return func() []result.Record {
		var all []result.Record
		for _, r := range reads {
			all = append(all, r()...)
		}
		return all
	}
}

// runTestStream ends ts at an infinite watermark, runs the streaming
// composite over it on prism and returns its records (through the file
// sink) and the run's result, for its metrics.
func runTestStream(t *testing.T, ts teststream.Config, cfg transforms.Config) ([]result.Record, beam.PipelineResult) {
	t.Helper()
	if err := ts.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	out, err := transforms.Aggregate(s, teststream.Create(s, ts), cfg)
	if err != nil {
		t.Fatal(err)
	}
	read := collectParts(t, p, out.RecordParts, s)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	return read(), res
}

// collect writes the records to a file through the production sink and
// reads them back.
func collect(t *testing.T, p *beam.Pipeline, recs []beam.PCollection, s beam.Scope) func() []result.Record {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	pipelines.WriteRecords(s, path, recs...)
	return func() []result.Record {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []result.Record
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<26)
		for sc.Scan() {
			var r result.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("bad record %q: %v", sc.Text(), err)
			}
			out = append(out, r)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func TestBatchMatchesReference(t *testing.T) {
	start := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		n     int
		batch int
		cfg   clickgen.Config
		tc    func(*transforms.Config)
	}{
		{"clean", 5000, 512, clickgen.Config{Seed: 1, Ads: 50, Start: start, EventRate: 50}, nil},
		{"duplicates malformed late", 8000, 1000, clickgen.Config{Seed: 2, Ads: 200, Start: start, EventRate: 40,
			DupShare: 0.2, MalformedShare: 0.1, LateShare: 0.1, TooLateShare: 0.05}, nil},
		{"one line per batch, small top-N, odd windows", 1500, 1, clickgen.Config{Seed: 3, Ads: 30, Start: start, EventRate: 10, DupShare: 0.3},
			func(c *transforms.Config) { c.TopN = 3; c.WindowSizes = []int{2, 7} }},
		// Batches of at least parallelMinLines go through the parallel
		// parse and the aggregation shards (parse_parallel.go).
		{"large batches, parsed and aggregated in parallel", 20000, 4096, clickgen.Config{Seed: 5, Ads: 300, Start: start, EventRate: 100,
			DupShare: 0.2, MalformedShare: 0.05, LateShare: 0.1}, nil},
		// The seed's cardinality: at least 100k distinct ads, about one
		// click per (ad, minute).
		{"high cardinality", 150000, 8192, clickgen.Config{Seed: 6, Ads: 2_000_000, Uniform: true, Start: start, EventRate: 1000,
			DupShare: 0.1, MalformedShare: 0.01, LateShare: 0.05}, nil},
		{"tiny bundles flush early", 3000, 100, clickgen.Config{Seed: 4, Ads: 20, Start: start, EventRate: 20, DupShare: 0.25},
			func(c *transforms.Config) { c.MaxBundleClicks = 7 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, _ := generate(t, tt.n, tt.cfg)
			cfg := transforms.DefaultConfig()
			if tt.tc != nil {
				tt.tc(&cfg)
			}
			p, s := beam.NewPipelineWithRoot()
			out, err := transforms.Aggregate(s, beam.CreateList(s, batchesOf(lines, tt.batch, click.NoWatermark)), cfg)
			if err != nil {
				t.Fatal(err)
			}
			read := collect(t, p, out.RecordParts, s)
			res, err := ptest.RunWithMetrics(p)
			if err != nil {
				t.Fatal(err)
			}
			want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, nil)
			if tt.cfg.Ads >= 100_000 {
				if ads := distinctAds(want); ads < 100_000 {
					t.Fatalf("only %d distinct ads: not the cardinality the case claims", ads)
				}
			}
			got := reference.Finals(read(), cfg.TopN)
			reference.Compare(t, got, want)
			reference.CompareDigests(t, got, want)

			c := runners.Counters(res, transforms.MetricNamespace)
			var rejected int64
			for _, r := range click.Reasons {
				rejected += c[transforms.MetricRejected+string(r)]
			}
			if rejected != int64(want.Rejected) || c[transforms.MetricClicksIn] != int64(len(lines)) {
				t.Errorf("metrics: lines_in=%d rejected=%d, want %d and %d", c[transforms.MetricClicksIn], rejected, len(lines), want.Rejected)
			}
		})
	}
}

func TestInvalidConfigIsAnError(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	cfg := transforms.DefaultConfig()
	cfg.TopN = 0
	if _, err := transforms.Aggregate(s, beam.Create(s, click.Lines{}), cfg); err == nil {
		t.Fatal("Aggregate accepted top-N 0")
	}
}

// distinctAds counts the ads with a count in r.
func distinctAds(r reference.Results) int {
	ads := map[string]bool{}
	for k := range r.Counts {
		_, ad, _ := strings.Cut(k, "/")
		ads[ad] = true
	}
	return len(ads)
}

// ev builds one valid line.
func ev(id, ad string, at time.Time, country string) []byte {
	c := click.Click{EventID: id, AdID: ad, Time: at.UnixMilli(), Country: country}
	return c.AppendJSON(nil)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// TestStreamingLateAndDuplicates drives the composite with a TestStream the
// way the Kafka source would: each batch carries the source's watermark.
func TestStreamingLateAndDuplicates(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.WindowSizes = []int{1, 5}

	ts := teststream.NewConfig()
	var sent [][]byte
	step := func(wm time.Time, lines ...[]byte) {
		sent = append(sent, lines...)
		if err := ts.AddElements(ms(wm), click.Lines{Lines: lines, Watermark: ms(wm)}); err != nil {
			t.Fatal(err)
		}
	}
	advance := func(wm time.Time) {
		if err := ts.AdvanceWatermark(ms(wm)); err != nil {
			t.Fatal(err)
		}
	}
	// Minute 10:00: out of order within the batch.
	step(at(0), ev("e1", "ad1", at(10*time.Second), "US"), ev("e2", "ad1", at(20*time.Second), "GB"),
		ev("e3", "ad2", at(65*time.Second), "US"), ev("e4", "ad1", at(5*time.Second), "US"), []byte(`{"bad json`))
	ts.AdvanceProcessingTime(int64(3 * time.Second / time.Millisecond))
	advance(at(2 * time.Minute)) // 10:00 fires on time
	// Late but within the allowed lateness; duplicates of clicks whose window already fired.
	step(at(2*time.Minute), ev("e5", "ad1", at(30*time.Second), "US"), ev("e1", "ad1", at(10*time.Second), "US"),
		ev("e3", "ad2", at(65*time.Second), "US"), ev("e3", "ad2", at(65*time.Second), "US"))
	advance(at(8 * time.Minute)) // 10:00 closed 7 minutes ago: past the 5-minute lateness
	// Too late: dropped. On time: counted.
	step(at(8*time.Minute), ev("e6", "ad1", at(40*time.Second), "US"), ev("e7", "ad3", at(7*time.Minute+30*time.Second), ""))
	recs, res := runTestStream(t, ts, cfg)
	got := reference.Finals(recs, cfg.TopN)
	m := func(d time.Duration) string { return fmt.Sprint(at(d).Unix()) }
	wantCounts := map[string]int64{m(0) + "/ad1": 4, m(time.Minute) + "/ad2": 1, m(7*time.Minute) + "/ad3": 1}
	if !reflect.DeepEqual(got.Counts, wantCounts) {
		t.Errorf("counts = %v, want %v", got.Counts, wantCounts)
	}
	wantFiltered := map[string]int64{m(0) + "/country:US/ad1": 3, m(0) + "/country:GB/ad1": 1, m(time.Minute) + "/country:US/ad2": 1}
	if !reflect.DeepEqual(got.Filtered, wantFiltered) {
		t.Errorf("filtered = %v, want %v", got.Filtered, wantFiltered)
	}
	// Digests: of exactly the counted ids — duplicates once, e6 (too late) not.
	reference.CompareDigests(t, got, reference.Recount(sent, nil, cfg.TopN, map[string]bool{"e6": true}))
	top5 := got.Top["5/"+m(4*time.Minute)] // window 10:00..10:04 inclusive
	if want := []result.AdCount{{AdID: "ad1", Count: 4}, {AdID: "ad2", Count: 1}}; !reflect.DeepEqual(top5, want) {
		t.Errorf("top-5 at 10:04 = %v, want %v", top5, want)
	}
	c := runners.Counters(res, transforms.MetricNamespace)
	if c[transforms.MetricTooLate] != 1 || c[transforms.MetricRejected+string(click.ReasonInvalidJSON)] != 1 {
		t.Errorf("too_late=%d rejected invalid_json=%d, want 1 and 1", c[transforms.MetricTooLate], c[transforms.MetricRejected+string(click.ReasonInvalidJSON)])
	}
}

// TestStreamingEqualsBatch is the central property: for random arrival
// orders within the allowed lateness, the streaming composite's final values
// equal the batch composite's (and the reference's).
func TestStreamingEqualsBatch(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		seed    uint64
		n       int
		gen     clickgen.Config
		noCache bool // the stages rebuild their state on every element
	}{
		{"seed1", 1, 3000, clickgen.Config{Ads: 40, EventRate: 5}, false},
		{"seed2", 2, 3000, clickgen.Config{Ads: 40, EventRate: 5}, false},
		{"seed3", 3, 3000, clickgen.Config{Ads: 40, EventRate: 5}, false},
		// The in-memory copy of the state carries no correctness.
		{"seed1 without state cache", 1, 3000, clickgen.Config{Ads: 40, EventRate: 5}, true},
		{"seed4 without state cache", 4, 3000, clickgen.Config{Ads: 40, EventRate: 5}, true},
		// At least 100k distinct ads.
		{"high cardinality", 5, 130000, clickgen.Config{Ads: 2_000_000, Uniform: true, EventRate: 300}, false},
	}
	for _, tc := range cases {
		seed := tc.seed
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			gen := tc.gen
			gen.Seed, gen.Start, gen.DupShare, gen.MalformedShare = seed, t0, 0.15, 0.03
			lines, _ := generate(t, tc.n, gen)
			// Arrival order: each line is delayed by up to 3 minutes.
			type arr struct {
				line []byte
				at   int64
			}
			var p click.Parser
			var arrivals []arr
			step := int64(1000 / gen.EventRate)
			for i, l := range lines {
				base := t0.UnixMilli() + int64(i)*step // the generator's event clock
				if c, err := p.Parse(l); err == nil {
					base = c.Time
				}
				arrivals = append(arrivals, arr{l, base + rng.Int64N(3*60*1000)})
			}
			sort.SliceStable(arrivals, func(i, j int) bool { return arrivals[i].at < arrivals[j].at })

			cfg := transforms.DefaultConfig()
			cfg.Streaming = true
			cfg.WindowSizes = []int{1, 3}
			if tc.noCache {
				transforms.DisableStateCache(&cfg)
			}
			ts := teststream.NewConfig()
			// The watermark trails arrivals by 10 s: with at most 3 minutes of
			// delay and 5 minutes of lateness, nothing is too late.
			wm := t0.UnixMilli() - 60_000
			maxBatch := max(200, tc.n/100)
			for i := 0; i < len(arrivals); {
				j := min(i+1+rng.IntN(maxBatch), len(arrivals))
				var batch [][]byte
				for _, a := range arrivals[i:j] {
					batch = append(batch, a.line)
				}
				if err := ts.AddElements(wm, click.Lines{Lines: batch, Watermark: wm}); err != nil {
					t.Fatal(err)
				}
				if next := arrivals[j-1].at - 10_000; next > wm {
					wm = next
					if err := ts.AdvanceWatermark(wm); err != nil {
						t.Fatal(err)
					}
				}
				ts.AdvanceProcessingTime(2500)
				i = j
			}
			recs, res := runTestStream(t, ts, cfg)
			if late := runners.Counters(res, transforms.MetricNamespace)[transforms.MetricTooLate]; late != 0 {
				t.Fatalf("%d clicks too late: the test's arrival model is wrong", late)
			}
			want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, nil)
			if gen.Ads >= 100_000 {
				if ads := distinctAds(want); ads < 100_000 {
					t.Fatalf("only %d distinct ads: not the cardinality the case claims", ads)
				}
			}
			got := reference.Finals(recs, cfg.TopN)
			reference.Compare(t, got, want)
			reference.CompareDigests(t, got, want)
		})
	}
}
