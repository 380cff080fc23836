package clickgen

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
)

const testLines = 200_000

func generate(t testing.TB, cfg Config, n int) (*Generator, []Line) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Line, n)
	for i := range out {
		l := g.Next()
		// Copy: the generator reuses its buffer.
		d := bytes.Clone(l.Data)
		l.Data = d
		l.EventID = bytes.Clone(l.EventID)
		l.AdID = bytes.Clone(l.AdID)
		out[i] = l
	}
	return g, out
}

var mixed = Config{Seed: 42, Ads: 500, ZipfS: 1.2, DupShare: 0.05, LateShare: 0.04, TooLateShare: 0.02, MalformedShare: 0.03, Truth: true}

// Every line is what it claims: malformed lines are rejected by the real parser
// with the promised reason, every other line is accepted with the promised
// event_id, ad_id and time; duplicates carry an earlier line's event_id and
// the same instant; fresh event_ids are unique.
func TestLinesParseAsLabelled(t *testing.T) {
	_, lines := generate(t, mixed, testLines)
	var p click.Parser
	first := map[string]click.Click{} // event_id → first valid click
	reasons := map[click.Reason]int{}
	var forms [2]int // RFC 3339 string, integer ms
	for i, l := range lines {
		c, err := p.Parse(l.Data)
		if l.Kind == Malformed {
			r, ok := click.AsReject(err)
			if !ok || r.Reason != l.Reason {
				t.Fatalf("line %d %.200q: want reject %s, got %v", i, l.Data, l.Reason, err)
			}
			reasons[r.Reason]++
			continue
		}
		if err != nil {
			t.Fatalf("line %d (%s) %.200q rejected: %v", i, l.Kind, l.Data, err)
		}
		if c.EventID != string(l.EventID) || c.AdID != string(l.AdID) || c.Time != l.Time {
			t.Fatalf("line %d: parsed %+v, generator said id %s ad %s time %d", i, c, l.EventID, l.AdID, l.Time)
		}
		if bytes.Contains(l.Data, []byte(`"timestamp":"`)) {
			forms[0]++
		} else {
			forms[1]++
		}
		prev, seen := first[c.EventID]
		switch l.Kind {
		case Duplicate:
			if !seen {
				t.Fatalf("line %d: duplicate of unseen event_id %s", i, c.EventID)
			}
			if prev != c {
				t.Fatalf("line %d: duplicate %+v differs from the original %+v", i, c, prev)
			}
		default:
			if seen {
				t.Fatalf("line %d: fresh %s line reuses event_id %s", i, l.Kind, c.EventID)
			}
			first[c.EventID] = c
		}
	}
	for _, r := range click.Reasons {
		if reasons[r] == 0 {
			t.Errorf("no malformed line with reason %s", r)
		}
	}
	for i, n := range forms {
		if n < testLines/4 {
			t.Errorf("timestamp form %d used only %d times", i, n)
		}
	}
}

// Shares, late offsets and timestamps stay within their configured bounds.
func TestShares(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"mixed", mixed},
		{"none", Config{Seed: 7}},
		{"heavy", Config{Seed: 8, DupShare: 0.2, LateShare: 0.2, TooLateShare: 0.1, MalformedShare: 0.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, lines := generate(t, tc.cfg, testLines)
			cfg := g.Config()
			counts := map[Kind]int{}
			// Before the warm-up no line can be late: measure shares after it.
			warm := int((g.warm-cfg.Start.UnixMilli())*int64(cfg.EventRate)/1000) + 1
			for _, l := range lines {
				if int(l.Index) >= warm {
					counts[l.Kind]++
				}
				if l.Kind == Malformed || l.Kind == Duplicate {
					continue
				}
				// Behind the event-time clock at this line by how much?
				now := cfg.Start.UnixMilli() + int64(float64(l.Index)*1000/cfg.EventRate)
				lo, hi := time.Duration(0), cfg.Jitter
				switch l.Kind {
				case Late:
					lo, hi = cfg.LateMin, cfg.LateMax
				case TooLate:
					lo, hi = cfg.TooLateMin, cfg.TooLateMax
				}
				if d := time.Duration(now-l.Time) * time.Millisecond; d < lo-time.Millisecond || d > hi+time.Millisecond {
					t.Fatalf("%s line %d is %v behind the clock, want %v..%v", l.Kind, l.Index, d, lo, hi)
				}
			}
			n := float64(len(lines) - warm)
			for _, k := range []struct {
				kind  Kind
				share float64
			}{{Duplicate, cfg.DupShare}, {Late, cfg.LateShare}, {TooLate, cfg.TooLateShare}, {Malformed, cfg.MalformedShare}} {
				got := float64(counts[k.kind]) / n
				// The binomial sd at 200k lines is ≤ 0.0012.
				if math.Abs(got-k.share) > 0.004 {
					t.Errorf("%s share %.4f, want %.4f", k.kind, got, k.share)
				}
			}
		})
	}
}

// Ads follow the configured Zipf law and attributes their skewed tables,
// within tolerances; some clicks lack each optional attribute.
func TestDistributions(t *testing.T) {
	for _, tc := range []struct {
		ads int
		s   float64
	}{{100, 1.1}, {1000, 1.5}, {10, 2.5}} {
		cfg := Config{Seed: 3, Ads: tc.ads, ZipfS: tc.s}
		_, lines := generate(t, cfg, testLines)
		var p click.Parser
		ads := map[string]int{}
		country := map[string]int{}
		device := map[string]int{}
		format := map[string]int{}
		for _, l := range lines {
			c, err := p.Parse(l.Data)
			if err != nil {
				t.Fatal(err)
			}
			ads[c.AdID]++
			country[c.Country]++
			device[c.Device]++
			format[c.AdFormat]++
		}
		if len(ads) > tc.ads {
			t.Errorf("%d distinct ads, configured %d", len(ads), tc.ads)
		}
		// rand.Zipf: P(k) ∝ (1+k)^-s for k in 0..ads-1.
		h := 0.0
		for k := 0; k < tc.ads; k++ {
			h += math.Pow(float64(1+k), -tc.s)
		}
		for _, k := range []int{0, 1, 4} {
			if k >= tc.ads {
				continue
			}
			want := math.Pow(float64(1+k), -tc.s) / h
			got := float64(ads[AdID(k)]) / float64(len(lines))
			if math.Abs(got-want) > 0.01+0.05*want {
				t.Errorf("ads=%d s=%v: rank %d share %.4f, want %.4f", tc.ads, tc.s, k, got, want)
			}
		}
		for _, d := range []struct {
			name string
			w    *weighted
			got  map[string]int
		}{{"country", &Countries, country}, {"device", &Devices, device}, {"format", &Formats, format}} {
			prev := 0.0
			for i, v := range d.w.vals {
				want := d.w.cum[i] - prev
				prev = d.w.cum[i]
				if got := float64(d.got[v]) / float64(len(lines)); math.Abs(got-want) > 0.01 {
					t.Errorf("%s %s share %.4f, want %.4f", d.name, v, got, want)
				}
			}
			want := 1 - prev
			if got := float64(d.got[""]) / float64(len(lines)); math.Abs(got-want) > 0.01 || d.got[""] == 0 {
				t.Errorf("%s absent share %.4f, want %.4f", d.name, got, want)
			}
		}
	}
}

// The same seed gives the same bytes; another seed gives other bytes and
// event_ids that never collide with the first stream's.
func TestDeterminism(t *testing.T) {
	_, a := generate(t, mixed, 20_000)
	_, b := generate(t, mixed, 20_000)
	other := mixed
	other.Seed++
	_, c := generate(t, other, 20_000)
	ids := map[string]bool{}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) || a[i].Kind != b[i].Kind {
			t.Fatalf("line %d differs between two runs with seed %d", i, mixed.Seed)
		}
		if a[i].EventID != nil {
			ids[string(a[i].EventID)] = true
		}
	}
	same := 0
	for i := range c {
		if bytes.Equal(a[i].Data, c[i].Data) {
			same++
		}
		if c[i].EventID != nil && ids[string(c[i].EventID)] {
			t.Fatalf("seed %d reuses event_id %s of seed %d", other.Seed, c[i].EventID, mixed.Seed)
		}
	}
	if same > 10 { // a few short malformed lines ("null") may coincide
		t.Errorf("%d identical lines across different seeds", same)
	}
}

// The truth agrees with the lines, line by line, and survives its sidecar file.
func TestTruth(t *testing.T) {
	g, lines := generate(t, mixed, 50_000)
	tr := g.Truth()
	var dups, late, tooLate []string
	var mal []MalformedLine
	counts := map[string]int64{}
	for _, l := range lines {
		counts[l.Kind.String()]++
		switch l.Kind {
		case Duplicate:
			dups = append(dups, string(l.EventID))
		case Late:
			late = append(late, string(l.EventID))
		case TooLate:
			tooLate = append(tooLate, string(l.EventID))
		case Malformed:
			mal = append(mal, MalformedLine{Line: l.Index, Reason: l.Reason})
		}
	}
	path := filepath.Join(t.TempDir(), "truth.json")
	if err := tr.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*Truth{tr, back} {
		if got.Lines != int64(len(lines)) || !equal(got.Duplicates, dups) || !equal(got.Late, late) ||
			!equal(got.TooLate, tooLate) || !equal(got.Malformed, mal) || len(got.Counts) != len(counts) {
			t.Fatalf("truth does not match the lines: %d lines, counts %v vs %v", got.Lines, got.Counts, counts)
		}
		for k, v := range counts {
			if got.Counts[k] != v {
				t.Errorf("truth count %s = %d, lines say %d", k, got.Counts[k], v)
			}
		}
	}
	if len(dups) == 0 || len(tooLate) == 0 || len(mal) == 0 || len(late) == 0 {
		t.Fatal("stream lacks a kind of line")
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"zipf", Config{ZipfS: 1}, "zipf"},
		{"ads", Config{Ads: -1}, "ads"},
		{"share", Config{DupShare: 1.5}, "duplicate share"},
		{"nan share", Config{LateShare: math.NaN()}, "late share"},
		{"sum", Config{DupShare: 0.6, MalformedShare: 0.6}, "add up"},
		{"start", Config{Start: time.Date(2000, 1, 1, 0, 10, 0, 0, time.UTC)}, "start"},
		{"jitter", Config{Jitter: time.Hour}, "jitter"},
		{"rate", Config{EventRate: -3}, "event rate"},
		{"late range", Config{LateMin: 5 * time.Minute, LateMax: time.Minute}, "late range"},
		{"too-late overlaps late", Config{TooLateMin: 2 * time.Minute, TooLateMax: time.Hour}, "too-late"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

type memSink struct {
	lines   [][]byte
	flushes int
}

func (m *memSink) WriteLine(_ context.Context, l *Line) error {
	m.lines = append(m.lines, bytes.Clone(l.Data))
	return nil
}
func (m *memSink) Flush(context.Context) error { m.flushes++; return nil }

func TestRun(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		g, _ := New(mixed)
		var buf bytes.Buffer
		n, err := Run(context.Background(), g, NewWriterSink(&buf), RunOptions{Count: 1234})
		if err != nil || n != 1234 {
			t.Fatalf("n=%d err=%v", n, err)
		}
		if got := bytes.Count(buf.Bytes(), []byte{'\n'}); got != 1234 || buf.Bytes()[buf.Len()-1] != '\n' {
			t.Fatalf("%d newline-terminated lines written, want 1234", got)
		}
		_, want := generate(t, mixed, 1234)
		for i, l := range bytes.Split(buf.Bytes()[:buf.Len()-1], []byte{'\n'}) {
			if !bytes.Equal(l, want[i].Data) {
				t.Fatalf("line %d differs from the generator's", i)
			}
		}
	})
	t.Run("rate", func(t *testing.T) {
		// 60 lines at 200/s must take at least ~0.3 s of wall time; the
		// upper bound is left loose for a loaded machine.
		g, _ := New(mixed)
		s := &memSink{}
		began := time.Now()
		n, err := Run(context.Background(), g, s, RunOptions{Count: 60, Rate: 200})
		if el := time.Since(began); err != nil || n != 60 || el < 250*time.Millisecond {
			t.Fatalf("n=%d err=%v in %v, want 60 lines in ≥ 0.3 s", n, err, el)
		}
		if s.flushes < 2 {
			t.Errorf("paced run flushed %d times: a tailer would see lines in bursts", s.flushes)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		g, _ := New(mixed)
		s := &memSink{}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		n, err := Run(ctx, g, s, RunOptions{Rate: 1000})
		if !errors.Is(err, context.DeadlineExceeded) || n != int64(len(s.lines)) || n == 0 {
			t.Fatalf("n=%d lines=%d err=%v", n, len(s.lines), err)
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	g, err := New(mixed)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		bytes += int64(len(g.Next().Data))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.SetBytes(bytes / int64(b.N))
}

func BenchmarkRunToWriter(b *testing.B) {
	cfg := mixed
	cfg.Truth = false
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := Run(context.Background(), g, NewWriterSink(discard{}), RunOptions{Count: int64(b.N)}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestLinesMatchesTheGenerator(t *testing.T) {
	cfg := Config{Seed: 3, DupShare: 0.2}
	lines, truth, err := Lines(500, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Truth = true
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if want := g.Next().Data; string(l) != string(want) {
			t.Fatalf("line %d: %q, the generator gives %q", i, l, want)
		}
	}
	if truth == nil || len(truth.Duplicates) != len(g.Truth().Duplicates) || len(truth.Duplicates) == 0 {
		t.Fatalf("truth %+v, the generator's %+v", truth, g.Truth())
	}
	if _, _, err := Lines(1, Config{DupShare: 2}); err == nil {
		t.Fatal("an invalid config was accepted")
	}
}
