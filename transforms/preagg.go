package transforms

import (
	"context"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// Beam metric names the fused stage reports (namespace "adclick").
const (
	MetricNamespace  = "adclick"
	MetricClicksIn   = "lines_in"
	MetricValid      = "clicks_valid"
	MetricDuplicates = "duplicates"
	MetricTooLate    = "too_late"
	MetricRejected   = "rejected_" // + reason
)

// maxSeen bounds the per-bundle seen-set: past it the set restarts, and later
// duplicates of the same (ad, minute) still merge away in the per-minute
// combine (only cross-(ad, minute) duplicates would then be missed).
const maxSeen = 16 << 20

// adMinute identifies a partial inside a bundle; the shuffle key string is
// built only when the partial is emitted.
type adMinute struct {
	minute int64
	ad     string
}

// outcome of offering one click to the bundle aggregator.
type outcome int

const (
	accepted outcome = iota
	duplicate
	tooLate
)

// bundleAgg is the in-memory "map + aggregate" of the design (§5): it
// deduplicates and pre-aggregates one bundle's clicks by (ad, minute), so
// that what leaves the fused stage is one partial per (ad, minute) per
// bundle instead of one element per click.
type bundleAgg struct {
	latenessMS int64
	maxClicks  int
	shards     int       // Config.Shards
	fault      [2]string // Config.FaultCountryAs

	parts   map[adMinute]*partialBuilder
	tooLate map[adMinute][]clickID // ids judged too late (toolate.go)
	seen    idSet
	maxSeen int // bound on len(seen); see maxSeen
	held    int // clicks held in parts and tooLate

	// per-bundle metric deltas, flushed once per input batch
	valid, dups, late int64

	// wm is the source watermark of the batch being aggregated (streaming),
	// click.NoWatermark in batch. It stamps the emitted partials; see flush.
	wm int64
}

func newBundleAgg(latenessMS int64, maxClicks, shards int, fault [2]string) *bundleAgg {
	return &bundleAgg{
		latenessMS: latenessMS,
		maxClicks:  maxClicks,
		shards:     max(1, shards),
		fault:      fault,
		parts:      make(map[adMinute]*partialBuilder),
		maxSeen:    maxSeen,
		wm:         click.NoWatermark,
	}
}

// add offers a valid click read when the source's watermark was wm.
func (a *bundleAgg) add(c *click.Click, wm int64) outcome {
	return a.addID(c, idOf(c.EventID), wm)
}

// addID is add with the event id's hash already computed (id must be
// idOf(c.EventID)).
func (a *bundleAgg) addID(c *click.Click, id clickID, wm int64) outcome {
	minute := c.Minute()
	// A window [minute, minute+60s) closed more than the allowed lateness
	// before the watermark is too late (docs/spec.md §2). Batch sources pass
	// click.NoWatermark, so nothing is. The decision is recorded: nothing
	// downstream could make it again (toolate.go).
	if wm != click.NoWatermark && wm > (minute+60)*1000+a.latenessMS {
		a.late++
		a.noteTooLate(adMinute{minute: minute, ad: c.AdID}, id)
		return tooLate
	}
	if a.seen.len() < a.maxSeen {
		if !a.seen.add(id) {
			a.dups++
			return duplicate
		}
	} else {
		if a.seen.has(id) {
			a.dups++
			return duplicate
		}
		a.seen.reset()
		a.seen.add(id)
	}
	k := adMinute{minute: minute, ad: c.AdID}
	b := a.parts[k]
	if b == nil {
		b = &partialBuilder{}
		a.parts[k] = b
	}
	at := attrsOf(c)
	if a.fault[0] != "" && at.Country == a.fault[0] {
		at.Country = a.fault[1]
	}
	b.add(id, at)
	a.held++
	a.valid++
	return accepted
}

func (a *bundleAgg) full() bool { return a.held >= a.maxClicks }

// flush emits every partial and forgets them: one MinutePartial per
// (minute, shard of the ad), holding that bundle's clicks of every ad of the
// shard. Streaming, a partial is stamped with the source watermark, or its
// minute's end when the watermark has passed that (a late partial): pending
// partials then hold the next stage's input watermark no further back than
// the source's own, and the next stages pace their output on it. Not raised
// to the minute's start: a new minute's partials arrive while the watermark
// (newest event time − the reader's delay) is still in the minute before,
// and stamped at the minute's start they held the count stage's ticks until
// the watermark got there — the first seconds of every minute showed about
// that delay (5 s) late. The streaming stages are in the global window, so
// the stamp decides no window. Batch: the minute's start.
// The seen-set survives until the bundle ends so that duplicates across
// (ad, minute) keys are still caught after an early flush. The too-late
// records go to late (nil: none can have been recorded, as in a replay).
func (a *bundleAgg) flush(emit func(beam.EventTime, string, MinutePartial), late func(beam.EventTime, result.Record)) {
	type mk struct {
		minute int64
		shard  int
	}
	out := make(map[mk]*MinutePartial)
	for k, b := range a.parts {
		key := mk{k.minute, shardOf(k.ad, a.shards)}
		mp := out[key]
		if mp == nil {
			mp = &MinutePartial{Minute: k.minute}
			out[key] = mp
		}
		mp.Ads = append(mp.Ads, k.ad)
		mp.Parts = append(mp.Parts, b.build())
	}
	for k, mp := range out {
		ts := k.minute * 1000
		if a.wm != click.NoWatermark {
			ts = min(a.wm, ts+59_999)
		}
		mp.sortByAd()
		emit(mtime.FromMilliseconds(ts), shardKey(k.minute, k.shard), *mp)
	}
	clear(a.parts)
	if late != nil {
		a.flushTooLate(late)
	}
	a.held = 0
}

func (a *bundleAgg) endBundle(emit func(beam.EventTime, string, MinutePartial)) {
	a.flush(emit, nil)
	a.seen.reset()
}

// stageMetrics are the Beam counters of the fused stage.
type stageMetrics struct {
	in, valid, dups, late beam.Counter
	rejected              map[click.Reason]beam.Counter
}

func newStageMetrics() stageMetrics {
	m := stageMetrics{
		in:       beam.NewCounter(MetricNamespace, MetricClicksIn),
		valid:    beam.NewCounter(MetricNamespace, MetricValid),
		dups:     beam.NewCounter(MetricNamespace, MetricDuplicates),
		late:     beam.NewCounter(MetricNamespace, MetricTooLate),
		rejected: make(map[click.Reason]beam.Counter, len(click.Reasons)),
	}
	for _, r := range click.Reasons {
		m.rejected[r] = beam.NewCounter(MetricNamespace, MetricRejected+string(r))
	}
	return m
}

func (m *stageMetrics) flush(ctx context.Context, a *bundleAgg) {
	if a.valid != 0 {
		m.valid.Inc(ctx, a.valid)
	}
	if a.dups != 0 {
		m.dups.Inc(ctx, a.dups)
	}
	if a.late != 0 {
		m.late.Inc(ctx, a.late)
	}
	a.valid, a.dups, a.late = 0, 0, 0
}

// aggregateLinesFn is the fused per-click stage for raw lines: parse and
// validate, dead-letter rejects, drop too-late clicks, dedup and
// pre-aggregate. Everything per click happens here, in memory.
type aggregateLinesFn struct {
	LatenessMS int64
	MaxClicks  int
	Shards     int
	EmitValid  bool
	Fault      [2]string

	parser   click.Parser
	one      parsed
	pp       *parallelParser // nil: always parse inline
	ppMin    int             // batches of at least this many lines use pp
	shards   []*bundleAgg    // by event id hash; one unless pp is set
	outcomes []outcome       // per line of a parallel batch
	metrics  stageMetrics
}

func (f *aggregateLinesFn) Setup() {
	f.metrics = newStageMetrics()
	f.setWorkers(defaultParseWorkers())
}

// setWorkers sizes the parallel parser and the aggregation shards: one shard
// per worker, so that both steps of a large batch use every worker.
func (f *aggregateLinesFn) setWorkers(n int) {
	f.pp = newParallelParser(n)
	f.ppMin = parallelMinLines
	k := 1
	if f.pp != nil {
		k = f.pp.workers()
	}
	f.shards = make([]*bundleAgg, k)
	for i := range f.shards {
		f.shards[i] = newBundleAgg(f.LatenessMS, max(1, f.MaxClicks/k), f.Shards, f.Fault)
		f.shards[i].maxSeen = maxSeen / k
	}
}

// shard is where a click with this event id hash is aggregated. Every copy of
// an id goes to the same shard, whichever path parsed it.
func (f *aggregateLinesFn) shard(id clickID) *bundleAgg {
	return f.shards[id.Lo%uint64(len(f.shards))]
}

func (f *aggregateLinesFn) ProcessElement(ctx context.Context, in click.Lines,
	emit func(beam.EventTime, string, MinutePartial), dead func(click.DeadLetter), valid func(click.Batch), late func(beam.EventTime, result.Record)) {
	var keep []click.Click
	if f.EmitValid {
		keep = make([]click.Click, 0, len(in.Lines))
	}
	for _, a := range f.shards {
		a.wm = in.Watermark
	}
	if f.pp != nil && len(in.Lines) >= f.ppMin {
		keep = f.processParallel(ctx, in, keep, dead)
	} else {
		for _, line := range in.Lines {
			parseLine(&f.parser, line, &f.one)
			if f.one.err != nil {
				f.deadLetter(ctx, line, f.one.err, dead)
				continue
			}
			a := f.shard(f.one.id)
			if a.addID(&f.one.c, f.one.id, in.Watermark) != duplicate && f.EmitValid {
				keep = append(keep, f.one.c) // too-late clicks are kept in the raw store (docs/spec.md §2)
			}
			if a.full() {
				f.flush(emit, late)
			}
		}
	}
	f.metrics.in.Inc(ctx, int64(len(in.Lines)))
	full := false
	for _, a := range f.shards {
		f.metrics.flush(ctx, a)
		full = full || a.full()
	}
	// Flush when full; otherwise at the end of the bundle, streaming
	// included: a streaming bundle lasts at most the source's checkpoint
	// budget (250 ms by default), and every element that reaches the
	// keyed stages costs state calls there, so one partial per (minute,
	// shard) per bundle, not per batch, is what keeps the runner's work
	// independent of the click rate. A partial stamped behind the
	// watermark the source reported meanwhile is no problem: the keyed
	// stages are in the global window and never drop data.
	if full {
		f.flush(emit, late)
	}
	if len(keep) > 0 {
		valid(click.Batch{Clicks: keep})
	}
}

// processParallel parses a large batch on every worker, aggregates it on
// every shard, then emits dead letters and valid clicks in line order
// (parse_parallel.go).
func (f *aggregateLinesFn) processParallel(ctx context.Context, in click.Lines, keep []click.Click, dead func(click.DeadLetter)) []click.Click {
	out := f.pp.parseAll(in.Lines)
	defer f.pp.release()
	if cap(f.outcomes) < len(out) {
		f.outcomes = make([]outcome, len(out))
	}
	outcomes := f.outcomes[:len(out)]
	k := uint64(len(f.shards))
	parallel(len(f.shards), func(s int) {
		a := f.shards[s]
		for i := range out {
			r := &out[i]
			if r.err != nil || r.id.Lo%k != uint64(s) {
				continue
			}
			outcomes[i] = a.addID(&r.c, r.id, in.Watermark)
		}
	})
	for i := range out {
		r := &out[i]
		switch {
		case r.err != nil:
			f.deadLetter(ctx, in.Lines[i], r.err, dead)
		case f.EmitValid && outcomes[i] != duplicate:
			keep = append(keep, r.c)
		}
	}
	return keep
}

// deadLetter emits a rejected line with its reason.
func (f *aggregateLinesFn) deadLetter(ctx context.Context, line []byte, err error, dead func(click.DeadLetter)) {
	rj, ok := click.AsReject(err)
	if !ok { // Parse promises a RejectError; never lose a line if that breaks
		rj = &click.RejectError{Reason: click.ReasonInvalidJSON, Detail: err.Error()}
	}
	f.metrics.rejected[rj.Reason].Inc(ctx, 1)
	dead(click.DeadLetter{Line: click.Truncate(line, click.DeadLetterMaxLine), Reason: string(rj.Reason), Field: rj.Field, Detail: rj.Detail})
}

// flush emits every shard's partials, one per (ad, minute): a key's clicks
// in several shards are joined first (no id is in two shards, so this is a
// concatenation). Emitting one partial per shard would make the next stage
// merge them, copying every id once more, and the runner's pre-combine
// cannot do it first: it holds only 2,000 keys.
func (f *aggregateLinesFn) flush(emit func(beam.EventTime, string, MinutePartial), late func(beam.EventTime, result.Record)) {
	base := f.shards[0]
	for _, a := range f.shards[1:] {
		base.absorbTooLate(a)
		for k, b := range a.parts {
			if d := base.parts[k]; d != nil {
				d.absorb(b)
			} else {
				base.parts[k] = b
			}
		}
		base.held += a.held
		clear(a.parts)
		a.held = 0
	}
	base.flush(emit, late)
}

func (f *aggregateLinesFn) FinishBundle(emit func(beam.EventTime, string, MinutePartial), _ func(click.DeadLetter), _ func(click.Batch), late func(beam.EventTime, result.Record)) {
	f.flush(emit, late)
	for _, a := range f.shards {
		a.seen.reset()
	}
}

// aggregateClicksFn is the fused per-click stage for clicks that were
// validated before they were stored (a replay from the raw store).
type aggregateClicksFn struct {
	MaxClicks int
	Shards    int
	Fault     [2]string

	agg     *bundleAgg
	metrics stageMetrics
}

func (f *aggregateClicksFn) Setup() {
	f.agg = newBundleAgg(0, f.MaxClicks, f.Shards, f.Fault)
	f.metrics = newStageMetrics()
}

func (f *aggregateClicksFn) ProcessElement(ctx context.Context, in click.Batch, emit func(beam.EventTime, string, MinutePartial)) {
	for i := range in.Clicks {
		f.agg.add(&in.Clicks[i], click.NoWatermark)
		if f.agg.full() {
			f.agg.flush(emit, nil)
		}
	}
	f.metrics.in.Inc(ctx, int64(len(in.Clicks)))
	f.metrics.flush(ctx, f.agg)
}

func (f *aggregateClicksFn) FinishBundle(emit func(beam.EventTime, string, MinutePartial)) {
	f.agg.endBundle(emit)
}
