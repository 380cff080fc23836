package streambench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/services/logwatch"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/transforms"
)

// Freshness benchmark timing.
const (
	probeEvery     = 50 * time.Millisecond // one probe click this often
	freshWarmUp    = 15 * time.Second      // before the first measured window
	freshWindow    = 30 * time.Second      // one measured window per b.N
	freshDrain     = 30 * time.Second      // longest wait for the last probes
	storePollEvery = 20 * time.Millisecond
	probeAd        = "streambench-probe-ad"
)

// BenchmarkFreshness runs the whole system in this process, as the
// all-in-one wires it but on the real Kafka: a generator appends clicks to a
// log file at a steady rate (event time = now; 3% duplicates, 2% late, 0.5%
// too late, 0.5% malformed), the log watcher publishes them to a fresh raw
// topic (4 partitions), the streaming job (pipelines.Stream on prism, default
// aggregation config) aggregates them to a results
// topic, and the two DB writers write results and raw clicks into one fresh
// Pebble store.
//
// Every 50 ms the generator's sink also writes a probe click of a dedicated ad
// (event time = now) and flushes; its freshness is the time from that write
// until store.Count of the probe ad's minute includes it (polled every 20 ms;
// one key, one partition, in order, so a count of k means the first k probes
// of the minute). The baseline in the same run is the plain path: a plain
// franz-go consumer of the raw topic notes when each probe's record arrives
// (log written → watcher → Kafka → consumed). Probes written in the 15 s
// warm-up are not counted; each b.N is a 30 s window.
//
// Metrics: p50_s, p99_s, max_s (to the store), plain_p50_s, plain_p99_s
// (to the raw-topic consumer), gen_lines/s (what the generator really wrote,
// probes included), consumed_lines/s (what reached the raw topic), and
// unresolved (probes not in the store 30 s after the last window).
//
// ADCLICK_BENCH_RATES=20000,1000 picks the rates (default 50,000, 20,000,
// 10,000 and 1,000). Each window logs the process's RSS and Go heap, so a
// long run (-benchtime 40x: 20 minutes) shows whether memory stays flat.
func BenchmarkFreshness(b *testing.B) {
	rates := []int{50_000, 20_000, 10_000, 1_000}
	if v := os.Getenv("ADCLICK_BENCH_RATES"); v != "" {
		rates = rates[:0]
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				b.Fatalf("ADCLICK_BENCH_RATES: bad rate %q", f)
			}
			rates = append(rates, r)
		}
	}
	for _, rate := range rates {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchFreshness(b, rate) })
	}
}

func benchFreshness(b *testing.B, rate int) {
	brokers := brokersOf(b)
	b.Logf("load average before: %s", loadavg())
	raw := newTopic(b, brokers, "fresh-raw", rawPartitions)
	res := newTopic(b, brokers, "fresh-results", rawPartitions)
	dead := newTopic(b, brokers, "fresh-dead", 1)
	dir := b.TempDir()
	logPath := filepath.Join(dir, "clicks.jsonl")
	st, err := pebblestore.Open(filepath.Join(dir, "pebble"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	spawn := func(what string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", what, err)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	// The generator, with probes. The log file exists before the watcher starts.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tr := newTracker()
	sink := &probeSink{inner: clickgen.NewWriterSink(f), t: tr, run: topicSeq.Add(1)}
	gen, err := clickgen.New(clickgen.Config{Seed: uint64(time.Now().UnixNano()), Start: time.Now(), EventRate: float64(rate),
		DupShare: 0.03, LateShare: 0.02, TooLateShare: 0.005, MalformedShare: 0.005})
	if err != nil {
		b.Fatal(err)
	}

	// The log watcher.
	lw, err := logwatch.New(logwatch.Config{Globs: []string{logPath}, Brokers: brokers, Topic: raw,
		StatePath: filepath.Join(dir, "logwatch.json")})
	if err != nil {
		b.Fatal(err)
	}
	spawn("log watcher", func() error { return lw.Run(ctx) })

	// The streaming job.
	agg := transforms.DefaultConfig()
	agg.Streaming = true
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, pipelines.StreamConfig{
		Raw:         kafkaio.ReadConfig{Brokers: brokers, Topic: raw, Group: raw + "-stream", AllowedLateness: agg.AllowedLateness},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: agg,
	}); err != nil {
		b.Fatal(err)
	}
	spawn("streaming job", func() error {
		_, err := runners.Run(ctx, p, runners.Options{Runner: runners.Prism})
		return err
	})

	// The DB writers.
	for _, w := range []struct {
		kind  dbwriter.Kind
		topic string
	}{{dbwriter.Results, res}, {dbwriter.Raw, raw}} {
		cfg := dbwriter.Config{Brokers: brokers, Topic: w.topic, Group: raw + "-dbwriter-" + string(w.kind), Kind: w.kind}
		spawn("db writer "+string(w.kind), func() error { return dbwriter.Run(ctx, cfg, st) })
	}

	// The plain path: a consumer of the raw topic noting the probes.
	var consumed atomic.Int64
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(raw),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	spawn("plain consumer", func() error {
		var ps click.Parser
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				consumed.Add(1)
				if string(r.Key) != probeAd {
					return
				}
				if c, err := ps.Parse(r.Value); err == nil {
					tr.seenPlain(c.EventID, now)
				}
			})
		}
		return nil
	})

	// The store poller.
	spawn("store poller", func() error {
		t := time.NewTicker(storePollEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			for minute := range tr.pendingMinutes() {
				n, err := st.Count(ctx, probeAd, "", minute, minute+60)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				tr.seenStore(minute, n, time.Now())
			}
		}
	})

	spawn("generator", func() error {
		_, err := clickgen.Run(ctx, gen, sink, clickgen.RunOptions{Rate: float64(rate)})
		return err
	})

	check := func() {
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
	sleep := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			check()
			time.Sleep(min(time.Second, time.Until(end)))
		}
	}
	sleep(freshWarmUp)
	b.ResetTimer()
	measureFrom := time.Now()
	lines0, consumed0 := sink.lines.Load(), consumed.Load()
	for i := 0; i < b.N; i++ {
		sleep(freshWindow)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// To stderr: the testing package truncates a benchmark's long log.
		fmt.Fprintf(os.Stderr, "freshness rate %d window %d (%v): RSS %.0f MiB, Go heap in use %.0f MiB, consumed %d lines\n", rate, i+1,
			time.Since(measureFrom).Round(time.Second), rssMiB(), float64(ms.HeapInuse)/(1<<20), consumed.Load()-consumed0)
	}
	measureTo := time.Now()
	lines1, consumed1 := sink.lines.Load(), consumed.Load()
	b.StopTimer()
	// Let the last probes arrive (the generator keeps the load on meanwhile).
	deadline := time.Now().Add(freshDrain)
	for time.Now().Before(deadline) && tr.unresolved(measureFrom, measureTo) > 0 {
		check()
		time.Sleep(100 * time.Millisecond)
	}
	drainEnd := time.Now()
	storeLat, plainLat, unresolved := tr.latencies(measureFrom, measureTo, drainEnd)
	if len(storeLat) == 0 {
		b.Fatal("no probes in the measured window")
	}
	secs := measureTo.Sub(measureFrom).Seconds()
	b.ReportMetric(pct(storeLat, 0.50), "p50_s")
	b.ReportMetric(pct(storeLat, 0.99), "p99_s")
	b.ReportMetric(pct(storeLat, 1), "max_s")
	b.ReportMetric(pct(plainLat, 0.50), "plain_p50_s")
	b.ReportMetric(pct(plainLat, 0.99), "plain_p99_s")
	b.ReportMetric(float64(lines1-lines0)/secs, "gen_lines/s")
	b.ReportMetric(float64(consumed1-consumed0)/secs, "consumed_lines/s")
	b.ReportMetric(float64(unresolved), "unresolved")
	if p := os.Getenv("ADCLICK_BENCH_PROBES"); p != "" { // experiments only
		tr.dump(b, p)
	}
	first, last := halves(tr, measureFrom, measureTo, drainEnd)
	b.Logf("rate %d/s: %d probes; store p50 %.3f s p99 %.3f s (first half of the run p50 %.3f s, second half %.3f s); plain p50 %.3f s p99 %.3f s; load average after: %s",
		rate, len(storeLat), pct(storeLat, .5), pct(storeLat, .99), first, last, pct(plainLat, .5), pct(plainLat, .99), loadavg())
}

// rssMiB is this process's resident set size (VmRSS), in MiB.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return math.NaN()
}

// probe is one probe click.
type probe struct {
	minute       int64 // event minute, Unix s
	idx          int64 // 0-based position among the probes of its minute
	written      time.Time
	plain, store time.Time // zero until seen
}

type tracker struct {
	mu        sync.Mutex
	probes    []*probe
	byID      map[string]*probe
	perMinute map[int64]int64
	pending   map[int64][]*probe // by minute, not yet in the store
}

func newTracker() *tracker {
	return &tracker{byID: map[string]*probe{}, perMinute: map[int64]int64{}, pending: map[int64][]*probe{}}
}

// add registers a probe before it is written; written is set by wrote.
func (t *tracker) add(id string, minute int64) *probe {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &probe{minute: minute, idx: t.perMinute[minute]}
	t.perMinute[minute]++
	t.probes = append(t.probes, p)
	t.byID[id] = p
	t.pending[minute] = append(t.pending[minute], p)
	return p
}

func (t *tracker) wrote(p *probe, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p.written = at
}

func (t *tracker) seenPlain(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.byID[id]; p != nil && p.plain.IsZero() {
		p.plain = at
	}
}

// pendingMinutes lists the minutes with probes not yet in the store.
func (t *tracker) pendingMinutes() map[int64]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int64]bool{}
	for m := range t.pending {
		out[m] = true
	}
	return out
}

// seenStore records that the store counts n probes in minute.
func (t *tracker) seenStore(minute, n int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.pending[minute]
	i := 0
	for i < len(ps) && ps[i].idx < n {
		ps[i].store = at
		i++
	}
	if i == len(ps) {
		delete(t.pending, minute)
	} else {
		t.pending[minute] = ps[i:]
	}
}

func (t *tracker) unresolved(from, to time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.probes {
		if !p.written.Before(from) && p.written.Before(to) && p.store.IsZero() {
			n++
		}
	}
	return n
}

// latencies of the probes written in [from, to), in seconds; a probe not
// seen by end counts as end − written (a lower bound).
func (t *tracker) latencies(from, to, end time.Time) (storeLat, plainLat []float64, unresolved int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lat := func(seen, written time.Time) float64 {
		if seen.IsZero() {
			return end.Sub(written).Seconds()
		}
		return seen.Sub(written).Seconds()
	}
	for _, p := range t.probes {
		if p.written.Before(from) || !p.written.Before(to) {
			continue
		}
		if p.store.IsZero() {
			unresolved++
		}
		storeLat = append(storeLat, lat(p.store, p.written))
		plainLat = append(plainLat, lat(p.plain, p.written))
	}
	return storeLat, plainLat, unresolved
}

// halves gives the median store freshness of the first and the second half
// of the measured span: a pipeline that does not keep up gets slower.
func halves(t *tracker, from, to, end time.Time) (first, second float64) {
	mid := from.Add(to.Sub(from) / 2)
	a, _, _ := t.latencies(from, mid, end)
	c, _, _ := t.latencies(mid, to, end)
	return pct(a, .5), pct(c, .5)
}

// pct is the q-quantile (nearest rank) of xs; NaN when empty.
func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// probeSink is the generator's sink plus a probe click of probeAd every
// probeEvery, flushed at once so its write time is when it reached the file.
type probeSink struct {
	inner *clickgen.WriterSink
	t     *tracker
	run   int64
	lines atomic.Int64
	next  time.Time
	seq   int
}

func (s *probeSink) WriteLine(ctx context.Context, l *clickgen.Line) error {
	if err := s.inner.WriteLine(ctx, l); err != nil {
		return err
	}
	s.lines.Add(1)
	if now := time.Now(); !now.Before(s.next) {
		s.next = now.Add(probeEvery)
		return s.probe(ctx, now)
	}
	return nil
}

func (s *probeSink) Flush(ctx context.Context) error { return s.inner.Flush(ctx) }

func (s *probeSink) probe(ctx context.Context, now time.Time) error {
	s.seq++
	id := fmt.Sprintf("probe-%d-%d-%d", os.Getpid(), s.run, s.seq)
	ms := now.UnixMilli()
	line := fmt.Appendf(nil, `{"event_id":%q,"ad_id":%q,"timestamp":%d,"user_id":"probe-user","ip":"10.0.0.1","country":"US","device":"mobile","ad_format":"banner"}`,
		id, probeAd, ms)
	var p click.Parser
	if _, err := p.Parse(line); err != nil {
		return fmt.Errorf("probe line %s does not parse: %w", line, err)
	}
	pr := s.t.add(id, click.MinuteOf(ms))
	if err := s.inner.WriteLine(ctx, &clickgen.Line{Data: line}); err != nil {
		return err
	}
	if err := s.inner.Flush(ctx); err != nil {
		return err
	}
	s.lines.Add(1)
	s.t.wrote(pr, time.Now())
	return nil
}

var _ store.Store = (*pebblestore.Store)(nil)

// dump writes every probe as "written (Unix ms), second of its minute,
// store freshness (s, -1 unresolved)": where in the minute the slow ones fall.
func (t *tracker) dump(b *testing.B, path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var buf strings.Builder
	for _, p := range t.probes {
		lat := -1.0
		if !p.store.IsZero() {
			lat = p.store.Sub(p.written).Seconds()
		}
		fmt.Fprintf(&buf, "%d %.3f %.3f\n", p.written.UnixMilli(), float64(p.written.UnixMilli()%60000)/1000, lat)
	}
	if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
		b.Error(err)
	}
}
