package transforms

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"

	"github.com/adclick/adclick/domain/result"
)

// topStreamFn is the streaming top-N stage: one key ("") holds every open
// minute's ad counts, as the count stage last reported them, and emits the
// top list of every window size and window end that changed, on an
// event-time tick. Its input is one small element per count-stage emission,
// so its cost follows the open minutes and changed ads, not the click rate.
//
// A window's list is computed in full once (sums over its minutes); after
// that only from its previous list and the ads that changed inside it:
// counts only grow, so an ad that neither was in the list nor changed still
// ranks below the list's last. A window is dropped once its last minute can
// no longer change (its end plus HorizonMS behind the watermark), a minute
// once no open window holds it.
//
// State: Base is the minutes as of the last compaction, Deltas what came
// since, Version changes with every write; the decoded form is cached
// (statecache.go). After a rebuild every due window is computed in full and
// emitted again: sinks merge top lists per ad, so a list emitted twice, or
// computed from fewer minutes by a restarted job, never lowers a stored one.
type topStreamFn struct {
	CacheID     string
	NoCache     bool
	Sizes       []int
	N           int
	HorizonMS   int64 // after a window's end: when it is final
	EmitEveryMS int64

	Base    state.Value[TopBase]
	Deltas  state.Bag[MinuteSnapshot]
	Done    state.Value[int64] // topAcc.done as of the last compaction
	Version state.Value[int64]
	Tick    timers.EventTime
}

func newTopStreamFn(sizes []int, n int, horizon, emitEvery time.Duration) *topStreamFn {
	return &topStreamFn{
		CacheID:     newCacheID("top"),
		Sizes:       slices.Clone(sizes),
		N:           n,
		HorizonMS:   horizon.Milliseconds(),
		EmitEveryMS: emitEvery.Milliseconds(),
		Base:        state.MakeValueState[TopBase]("base"),
		Deltas:      state.MakeBagState[MinuteSnapshot]("deltas"),
		Done:        state.MakeValueState[int64]("done"),
		Version:     state.MakeValueState[int64]("version"),
		Tick:        timers.InEventTime("tick"),
	}
}

type winKey struct {
	size int
	last int64 // the window's last minute, Unix s
}

// topAcc is the decoded state of the top stage. Ads are indices into its
// ad table (adtable.go), which also holds each ad's total over the minutes
// held: a bound on any of its window sums (updateTops).
type topAcc struct {
	ads      adTable
	minutes  map[int64]map[uint32]uint32 // minute → ad → count
	dirty    map[int64]map[uint32]struct{}
	emitted  map[winKey][]result.AdCount
	cutoff   int64 // minutes before this were dropped; late input for them is ignored
	done     int64 // windows whose last minute is before this are final and emitted
	baseLen  int   // entries in Base
	deltaLen int   // entries in Deltas
	dropped  bool  // minutes dropped since the last compaction
	tickAt   int64 // the tick timer's time (ms), 0 when none is set
}

func newTopAcc() *topAcc {
	return &topAcc{ads: newAdTable(), minutes: map[int64]map[uint32]uint32{}, dirty: map[int64]map[uint32]struct{}{}, emitted: map[winKey][]result.AdCount{}}
}

// apply keeps the larger count per (minute, ad) and returns what changed.
func (a *topAcc) apply(s MinuteSnapshot) map[string]int64 {
	if s.Minute < a.cutoff {
		return nil
	}
	m := a.minutes[s.Minute]
	if m == nil {
		m = make(map[uint32]uint32, len(s.Ads))
		a.minutes[s.Minute] = m
	}
	var changed map[string]int64
	for ad, c := range s.Ads {
		c = min(c, maxTopCount)
		if c <= 0 {
			continue
		}
		i := a.ads.intern(ad)
		old := int64(m[i])
		if c <= old {
			continue
		}
		a.ads.add(i, c-old)
		m[i] = uint32(c)
		d := a.dirty[s.Minute]
		if d == nil {
			d = map[uint32]struct{}{}
			a.dirty[s.Minute] = d
		}
		d[i] = struct{}{}
		if changed == nil {
			changed = map[string]int64{}
		}
		changed[ad] = c
	}
	return changed
}

func (f *topStreamFn) load(sp state.Provider) (*topAcc, int64, bool, error) {
	version, exists, err := f.Version.Read(sp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("transforms: reading the top stage's version: %w", err)
	}
	if exists && !f.NoCache {
		if v, ok := cacheOf(f.CacheID).take("", version); ok {
			return v.(*topAcc), version, true, nil
		}
	}
	acc := newTopAcc()
	if !exists {
		return acc, 0, false, nil
	}
	base, _, err := f.Base.Read(sp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("transforms: reading the top stage's base: %w", err)
	}
	acc.restore(base)
	done, _, err := f.Done.Read(sp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("transforms: reading the top stage's progress: %w", err)
	}
	acc.done = done
	acc.cutoff = f.cutoff(done)
	deltas, _, err := f.Deltas.Read(sp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("transforms: reading the top stage's deltas: %w", err)
	}
	for _, d := range deltas {
		acc.apply(d)
		acc.deltaLen += len(d.Ads)
	}
	clear(acc.dirty) // nothing is emitted yet: every due window is computed in full
	return acc, version, true, nil
}

func (f *topStreamFn) ProcessElement(ts beam.EventTime, sp state.Provider, tp timers.Provider, _ string, s MinuteSnapshot, _ func(result.Record)) error {
	acc, version, _, err := f.load(sp)
	if err != nil {
		return err
	}
	if changed := acc.apply(s); changed != nil {
		if err := f.Deltas.Add(sp, MinuteSnapshot{Minute: s.Minute, Ads: changed}); err != nil {
			return fmt.Errorf("transforms: appending to the top stage's deltas: %w", err)
		}
		acc.deltaLen += len(changed)
		version = newVersion()
		if err := f.Version.Write(sp, version); err != nil {
			return fmt.Errorf("transforms: writing the top stage's version: %w", err)
		}
		if at := ts.Milliseconds() + f.EmitEveryMS; acc.tickAt == 0 || at < acc.tickAt {
			acc.tickAt = at
			f.Tick.Set(tp, time.UnixMilli(at))
		}
	}
	if version != 0 {
		cacheOf(f.CacheID).put("", version, acc)
	}
	return nil
}

func (f *topStreamFn) OnTimer(_ context.Context, ts beam.EventTime, sp state.Provider, tp timers.Provider, _ string, _ timers.Context, emit func(result.Record)) error {
	acc, version, exists, err := f.load(sp)
	if err != nil || !exists {
		return err
	}
	now := ts.Milliseconds()
	f.tick(acc, emit)
	f.forget(acc, now)
	// Compacting once the deltas reach a quarter of the base keeps the
	// runner's copy of the state within 1.25× the base, whose rewrite is
	// cheap now that an entry is ~4 bytes.
	if acc.dropped || acc.deltaLen >= max(acc.baseLen/4, 4096) {
		if err := f.compact(sp, acc); err != nil {
			return err
		}
		version = newVersion()
		if err := f.Version.Write(sp, version); err != nil {
			return fmt.Errorf("transforms: writing the top stage's version: %w", err)
		}
	}
	acc.tickAt = 0
	if len(acc.minutes) > 0 {
		// Wake up when every window held is final, to drop them all. While
		// clicks flow, each element's tick (a second later) drops what is
		// final sooner; waking at every minute boundary instead cost one
		// bundle per minute of event time once a bounded read ended.
		hi := slices.Max(keys(acc.minutes))
		acc.tickAt = (hi+int64(slices.Max(f.Sizes))*60+120)*1000 + f.HorizonMS
		f.Tick.Set(tp, time.UnixMilli(acc.tickAt))
	}
	cacheOf(f.CacheID).put("", version, acc)
	return nil
}

// tick emits every window whose list is new or changed: every window that
// holds data, also one that ends after the newest minute (an early list;
// batch computes the same windows).
func (f *topStreamFn) tick(acc *topAcc, emit func(result.Record)) {
	if len(acc.minutes) == 0 {
		return
	}
	lo, hi := int64(1<<62), int64(-1<<62)
	for m := range acc.minutes {
		lo, hi = min(lo, m), max(hi, m)
	}
	for _, w := range f.Sizes {
		span := int64(w-1) * 60
		var dirty []int64
		for last := max(lo, acc.done); last <= hi+span; last += 60 {
			k := winKey{w, last}
			if _, seen := acc.emitted[k]; !seen {
				f.emitIfChanged(acc, k, f.fullTop(acc, last, span), emit)
			} else if acc.windowDirty(last, span) {
				dirty = append(dirty, last)
			}
		}
		if len(dirty) > 0 {
			f.updateTops(acc, w, dirty, emit)
		}
	}
	clear(acc.dirty)
}

func (f *topStreamFn) emitIfChanged(acc *topAcc, k winKey, top []result.AdCount, emit func(result.Record)) {
	prev, seen := acc.emitted[k]
	if len(top) == 0 || (seen && slices.Equal(top, prev)) {
		return
	}
	acc.emitted[k] = top
	emit(result.Record{Top: &result.Top{WindowSize: k.size, Minute: k.last, Ads: top}})
}

func (a *topAcc) windowDirty(last, span int64) bool {
	for m := last - span; m <= last; m += 60 {
		if len(a.dirty[m]) > 0 {
			return true
		}
	}
	return false
}

// fullTop sums every ad over the window's minutes.
func (f *topStreamFn) fullTop(acc *topAcc, last, span int64) []result.AdCount {
	sums := make(map[uint32]int64)
	for m := last - span; m <= last; m += 60 {
		for i, c := range acc.minutes[m] {
			sums[i] += int64(c)
		}
	}
	all := make([]result.AdCount, 0, len(sums))
	for i, c := range sums {
		all = append(all, result.AdCount{AdID: acc.ads.names[i], Count: c})
	}
	return topOf(all, f.N)
}

// updateTops recomputes the lists of the changed windows of size w (their
// last minutes ascending) from their previous lists and the ads that
// changed: counts only grow, so no other ad can have overtaken a list's
// last. One prefix sum per candidate ad over the minutes the windows span
// gives every window's sum in O(1), so a new minute that changes all w
// windows holding it costs w lists, not w² lookups.
//
// A changed ad outside the previous lists joins a list only with a window
// sum at least that list's last count (the last only rises), and no window
// sum exceeds the ad's total over the minutes held: an ad whose total is
// below the smallest last count of the full previous lists is in none of
// them and is skipped — with many ads, nearly all the changed ones.
func (f *topStreamFn) updateTops(acc *topAcc, w int, dirty []int64, emit func(result.Record)) {
	span := int64(w-1) * 60
	first, last := dirty[0]-span, dirty[len(dirty)-1]
	cand := map[uint32]struct{}{}
	floor := int64(math.MaxInt64) // the smallest last count of the previous lists; 0 if one is not full
	for _, e := range dirty {
		prev := acc.emitted[winKey{w, e}]
		for _, x := range prev {
			if i, ok := acc.ads.idx[x.AdID]; ok {
				cand[i] = struct{}{}
			}
		}
		if len(prev) < f.N {
			floor = 0
		} else {
			floor = min(floor, prev[len(prev)-1].Count)
		}
	}
	for m := first; m <= last; m += 60 {
		for i := range acc.dirty[m] {
			if acc.ads.totals[i] >= floor {
				cand[i] = struct{}{}
			}
		}
	}
	n := int((last-first)/60) + 1
	prefix := make(map[uint32][]int64, len(cand)) // prefix[ad][i]: ad's clicks in the first i minutes
	for ad := range cand {
		p := make([]int64, n+1)
		for i := range n {
			p[i+1] = p[i] + int64(acc.minutes[first+int64(i)*60][ad])
		}
		prefix[ad] = p
	}
	all := make([]result.AdCount, 0, len(cand))
	for _, e := range dirty {
		hiIdx := int((e-first)/60) + 1
		loIdx := hiIdx - w
		all = all[:0]
		for ad, p := range prefix {
			if c := p[hiIdx] - p[loIdx]; c > 0 {
				all = append(all, result.AdCount{AdID: acc.ads.names[ad], Count: c})
			}
		}
		f.emitIfChanged(acc, winKey{w, e}, slices.Clone(topOf(all, f.N)), emit)
	}
}

// forget drops the windows that are final at watermark now and the minutes
// no open window holds.
func (f *topStreamFn) forget(acc *topAcc, now int64) {
	for k := range acc.emitted {
		if (k.last+60)*1000+f.HorizonMS <= now {
			delete(acc.emitted, k)
		}
	}
	// The oldest window still open has its last minute at firstOpen (the
	// windows dropped above all end before it); it holds minutes from
	// firstOpen − (largest size − 1). tick starts there: one minute earlier
	// it recomputed and re-sent the last dropped window at every tick.
	firstOpen := (now - f.HorizonMS) / 60000 * 60
	acc.done = max(acc.done, firstOpen)
	cut := f.cutoff(acc.done)
	for m := range acc.minutes {
		if m < cut {
			for i, c := range acc.minutes[m] {
				acc.ads.add(i, -int64(c))
			}
			delete(acc.minutes, m)
			delete(acc.dirty, m)
			acc.dropped = true
		}
	}
	acc.cutoff = max(acc.cutoff, cut)
}

func keys(m map[int64]map[uint32]uint32) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// cutoff is the oldest minute an open window can hold when the windows
// before done are final.
func (f *topStreamFn) cutoff(done int64) int64 {
	if done == 0 {
		return 0
	}
	return done - int64(slices.Max(f.Sizes)-1)*60
}

// compact rewrites Base with the minutes kept and empties Deltas.
func (f *topStreamFn) compact(sp state.Provider, acc *topAcc) error {
	base, n := acc.base()
	if err := f.Base.Write(sp, base); err != nil {
		return fmt.Errorf("transforms: writing the top stage's base: %w", err)
	}
	if err := f.Done.Write(sp, acc.done); err != nil {
		return fmt.Errorf("transforms: writing the top stage's progress: %w", err)
	}
	if err := f.Deltas.Clear(sp); err != nil {
		return fmt.Errorf("transforms: clearing the top stage's deltas: %w", err)
	}
	acc.baseLen, acc.deltaLen, acc.dropped = n, 0, false
	return nil
}

// base is the state to write at a compaction, and its entries. It shares
// nothing with the acc: a runner may keep the value it was given for reads
// later in the bundle.
func (a *topAcc) base() (TopBase, int) {
	b := TopBase{Ads: slices.Clone(a.ads.names), Minutes: make([]TopMinute, 0, len(a.minutes))}
	n := 0
	for m, ads := range a.minutes {
		tm := TopMinute{Minute: m, Ads: make([]uint32, 0, len(ads)), Counts: make([]uint32, 0, len(ads))}
		for i, c := range ads {
			tm.Ads, tm.Counts = append(tm.Ads, i), append(tm.Counts, c)
		}
		b.Minutes = append(b.Minutes, tm)
		n += len(ads)
	}
	return b, n
}

// restore loads a compacted base into an empty acc, keeping its indices.
func (a *topAcc) restore(b TopBase) {
	a.ads.names = slices.Clone(b.Ads) // b may be the runner's copy, see base
	a.ads.totals = make([]int64, len(b.Ads))
	for _, tm := range b.Minutes {
		ads := make(map[uint32]uint32, len(tm.Ads))
		for k, i := range tm.Ads {
			ads[i] = tm.Counts[k]
			a.ads.totals[i] += int64(tm.Counts[k])
		}
		a.minutes[tm.Minute] = ads
		a.baseLen += len(ads)
	}
	for i, name := range a.ads.names {
		if a.ads.totals[i] > 0 {
			a.ads.idx[name] = uint32(i)
		} else {
			a.ads.names[i] = ""
			a.ads.free = append(a.ads.free, uint32(i))
		}
	}
}
