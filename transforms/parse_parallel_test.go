package transforms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/testing/clickgen"
)

// stageRun is everything the fused stage emits for one input.
type stageRun struct {
	// partials merged per key, as "key encoded-union": how many partials a
	// key's clicks are split into depends on the shards and the flushes, the
	// union of them must not.
	partials []string
	emitted  int // partials emitted, before merging
	dead     []click.DeadLetter
	valid    [][]click.Click
	metrics  map[string]int64
	tooLate  []string // "minute/ad hash" of every recorded too-late click, sorted
}

// runLinesFn runs aggregateLinesFn over batches as one bundle. workers < 2
// parses inline; otherwise batches of at least ppMin lines go through a
// parallelParser of that many workers.
func runLinesFn(t *testing.T, batches []click.Lines, maxClicks, workers, ppMin int) stageRun {
	t.Helper()
	f := &aggregateLinesFn{LatenessMS: (5 * time.Minute).Milliseconds(), MaxClicks: maxClicks, Shards: 4, EmitValid: true}
	f.Setup()
	f.setWorkers(workers)
	f.ppMin = ppMin
	ctx := metrics.SetPTransformID(metrics.SetBundleID(context.Background(), "bundle"), "fused")
	var run stageRun
	union := map[string]Partial{}
	wm := click.NoWatermark // of the batch being processed
	emit := func(et beam.EventTime, k string, mp MinutePartial) {
		minute, shard, ok := splitShardKey(k)
		if !ok || mp.Minute != minute {
			t.Fatalf("partial %s of minute %d", k, mp.Minute)
		}
		// Batch: the minute's start. Streaming: the source watermark, or the
		// minute's end once the watermark has passed it.
		want := minute * 1000
		if wm != click.NoWatermark {
			want = min(wm, (minute+60)*1000-1)
		}
		if et.Milliseconds() != want {
			t.Fatalf("partial %s stamped %d, want %d (batch watermark %d)", k, et.Milliseconds(), want, wm)
		}
		if !slices.IsSorted(mp.Ads) {
			t.Fatalf("partial %s: ads not sorted: %v", k, mp.Ads)
		}
		for i, ad := range mp.Ads {
			if shardOf(ad, f.Shards) != shard {
				t.Fatalf("ad %s in shard %d, want %d", ad, shard, shardOf(ad, f.Shards))
			}
			ak := adMinuteKey(minute, ad)
			union[ak] = mergePartials(union[ak], mp.Parts[i])
			run.emitted++
		}
	}
	dead := func(d click.DeadLetter) { run.dead = append(run.dead, d) }
	valid := func(c click.Batch) { run.valid = append(run.valid, slices.Clone(c.Clicks)) }
	lateSet := map[string]bool{}
	late := func(et beam.EventTime, r result.Record) {
		tl := r.TooLate
		if tl == nil || len(tl.Hashes) == 0 || et.Milliseconds() != wm {
			t.Fatalf("too-late output %+v stamped %d (watermark %d)", r, et.Milliseconds(), wm)
		}
		for _, h := range tl.Hashes {
			lateSet[adMinuteKey(tl.Minute, tl.AdID)+" "+h.String()] = true
		}
	}
	for _, b := range batches {
		wm = b.Watermark
		f.ProcessElement(ctx, b, emit, dead, valid, late)
	}
	f.FinishBundle(emit, dead, valid, late)
	run.tooLate = slices.Sorted(maps.Keys(lateSet))
	for k, p := range union {
		// Entries are sorted by id; the attribute dictionary's order
		// depends on the merge order, so print the attributes themselves.
		var b strings.Builder
		for _, e := range p.Entries {
			fmt.Fprintf(&b, " %x%x:%v", e.ID.Hi, e.ID.Lo, p.Attrs[e.Attr])
		}
		run.partials = append(run.partials, k+b.String())
	}
	slices.Sort(run.partials)
	run.metrics = map[string]int64{}
	err := metrics.Extractor{SumInt64: func(l metrics.Labels, v int64) {
		run.metrics[l.Namespace()+"/"+l.Name()] += v
	}}.ExtractFrom(metrics.GetStore(ctx))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// conflictingCopies returns, for some valid lines, a copy with the same
// event_id but other attributes (and sometimes another ad or minute).
func conflictingCopies(t *testing.T, lines [][]byte, rng *rand.Rand, n int) [][]byte {
	t.Helper()
	var p click.Parser
	var out [][]byte
	for _, l := range lines {
		if len(out) == n {
			break
		}
		if rng.IntN(4) != 0 {
			continue
		}
		c, err := p.Parse(l)
		if err != nil {
			continue
		}
		m := map[string]any{"event_id": c.EventID, "ad_id": c.AdID, "timestamp": c.Time,
			"country": []string{"US", "GB", "UK", "DE"}[rng.IntN(4)], "device": []string{"mobile", "tv"}[rng.IntN(2)]}
		switch rng.IntN(3) {
		case 0:
			m["ad_id"] = c.AdID + "-other"
		case 1:
			m["timestamp"] = c.Time + 60_000
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestParallelParseMatchesInline: parsing and aggregating batches in parallel
// gives exactly the outputs of doing it one line at a time on one goroutine —
// the same partials (merged per key), dead letters in the same order, valid
// clicks in the same order, same metrics —
// on input with exact and conflicting duplicates (within and across
// batches), malformed and too-late lines, whatever the batch sizes, early
// flushes and worker counts.
func TestParallelParseMatchesInline(t *testing.T) {
	cases := []struct {
		name      string
		seed      uint64
		lines     int
		batch     int
		maxClicks int
		workers   int
		ppMin     int
		streaming bool
	}{
		{"batch one big bundle", 1, 6000, 4096, 1 << 20, 2, parallelMinLines, false},
		{"uneven chunks", 2, 5000, 1000, 1 << 20, 3, 1, false},
		{"tiny batches stay inline", 3, 3000, 7, 1 << 20, 4, parallelMinLines, false},
		{"early flushes", 4, 5000, 2500, 300, 2, 100, false},
		{"more workers than chunks", 5, 2000, 300, 1 << 20, 8, 1, false},
		{"streaming with lateness", 6, 5000, 1500, 1 << 20, 2, 1000, true},
		{"one line batches", 7, 200, 1, 1 << 20, 2, 1, false},
		{"inline and parallel batches in one bundle", 8, 5000, 1500, 1 << 20, 2, 1000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 99))
			g, err := clickgen.New(clickgen.Config{Seed: tc.seed, Ads: 50, EventRate: 50,
				DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.05, MalformedShare: 0.05})
			if err != nil {
				t.Fatal(err)
			}
			lines := make([][]byte, tc.lines)
			for i := range lines {
				lines[i] = bytes.Clone(g.Next().Data)
			}
			// Conflicting copies, spliced in at random places (some before
			// their original, so the copy is the first one seen).
			for _, c := range conflictingCopies(t, lines, rng, tc.lines/20) {
				i := rng.IntN(len(lines) + 1)
				lines = slices.Insert(lines, i, c)
			}
			wm := click.NoWatermark
			var batches []click.Lines
			for i := 0; i < len(lines); i += tc.batch {
				if tc.streaming {
					// the watermark a streaming source would report: behind the batch
					var p click.Parser
					if c, err := p.Parse(lines[i]); err == nil {
						wm = max(wm, c.Time-2*time.Minute.Milliseconds())
					}
				}
				batches = append(batches, click.Lines{Lines: lines[i:min(i+tc.batch, len(lines))], Watermark: wm})
			}

			want := runLinesFn(t, batches, tc.maxClicks, 1, 0)
			got := runLinesFn(t, batches, tc.maxClicks, tc.workers, tc.ppMin)

			if want.metrics[MetricNamespace+"/"+MetricDuplicates] == 0 || len(want.dead) == 0 {
				t.Fatalf("input exercises too little: metrics %v, %d dead letters", want.metrics, len(want.dead))
			}
			if tc.streaming && (want.metrics[MetricNamespace+"/"+MetricTooLate] == 0 || len(want.tooLate) == 0) {
				t.Fatalf("no too-late clicks: metrics %v, %d recorded", want.metrics, len(want.tooLate))
			}
			if !tc.streaming && len(want.tooLate)+len(got.tooLate) != 0 {
				t.Errorf("batch recorded too-late clicks: %v %v", want.tooLate, got.tooLate)
			}
			if !slices.Equal(got.tooLate, want.tooLate) {
				t.Errorf("too-late records differ: parallel %d, inline %d", len(got.tooLate), len(want.tooLate))
			}
			if !reflect.DeepEqual(got.metrics, want.metrics) {
				t.Errorf("metrics: parallel %v, inline %v", got.metrics, want.metrics)
			}
			if !slices.Equal(got.dead, want.dead) {
				t.Errorf("dead letters differ: parallel %d, inline %d", len(got.dead), len(want.dead))
			}
			if !reflect.DeepEqual(got.valid, want.valid) {
				t.Errorf("valid clicks differ: parallel %d batches, inline %d", len(got.valid), len(want.valid))
			}
			if !slices.Equal(got.partials, want.partials) {
				t.Errorf("partials differ: parallel %d, inline %d", len(got.partials), len(want.partials))
			}
			// Without early or per-batch flushes, both emit each key once:
			// the shards' partials of a key are joined before they leave.
			if !tc.streaming && tc.maxClicks >= tc.lines && got.emitted != want.emitted {
				t.Errorf("parallel emitted %d partials, inline %d", got.emitted, want.emitted)
			}
		})
	}
}

// adMinuteKey names an (ad, minute) in the test's union of partials.
func adMinuteKey(minute int64, adID string) string {
	return strconv.FormatInt(minute, 10) + "/" + adID
}
