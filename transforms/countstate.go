package transforms

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"

	"github.com/adclick/adclick/domain/result"
)

// countFn is the streaming count stage, keyed by (minute, shard) in the
// global window. It merges the bundles' partials of its key into the exact
// set of unique clicks per ad, and emits the full count and filtered counts
// of every ad that changed, at most once per EmitEveryMS of event time, plus
// the changed ads' counts for the top-N stage.
//
// Why no runner windows and triggers: a window pane is a bundle on prism, and
// a pane per (ad, minute) capped the job at ~9k clicks/s. Here the runner
// sees one element per (minute, shard) per source bundle, and the too-late
// decision is the fused stage's alone (against the source watermark), so no
// runner can drop a click the job decided to count — a restarted job
// re-reading old minutes included.
//
// State: Clicks holds what each element added (bag appends cost the delta,
// not the key's size), Version changes with every append; the decoded sets
// live in a cache checked against Version (statecache.go). Expiry clears the
// key once no click of its minute can pass the too-late check any more.
type countFn struct {
	CacheID     string
	NoCache     bool
	NoDigests   bool  // Config.WithoutDigests
	HorizonMS   int64 // after the minute's end: allowed lateness + margin
	EmitEveryMS int64

	Clicks  state.Bag[MinutePartial]
	Version state.Value[int64]
	// Timer has two tags: tagExpiry clears the key, tagTick emits what
	// changed since the last emission. One family, because prism 2.73 hangs
	// a bundle of a transform with two event-time timer families.
	Timer timers.EventTime
}

const (
	tagExpiry = "expiry"
	tagTick   = "tick"
)

func newCountFn(horizon, emitEvery time.Duration) *countFn {
	return &countFn{
		CacheID:     newCacheID("count"),
		HorizonMS:   horizon.Milliseconds(),
		EmitEveryMS: emitEvery.Milliseconds(),
		Clicks:      state.MakeBagState[MinutePartial]("clicks"),
		Version:     state.MakeValueState[int64]("version"),
		Timer:       timers.InEventTime("timer"),
	}
}

// countAcc is the decoded state of one (minute, shard).
type countAcc struct {
	minute   int64
	ads      map[string]*adAcc
	attrs    []attrs
	attrIdx  map[attrs]uint32
	dirty    map[string]struct{}
	lastEmit int64 // event time (ms) of the last emission
	tickAt   int64 // the tick timer's time, 0 when none is set

	noDigests bool // countFn.NoDigests
}

// adAcc is one ad's unique clicks in the minute: each id with the index of
// its attributes, the clicks (and their digest) per attribute index, and the
// digest of all of them.
type adAcc struct {
	ids     map[clickID]uint32
	perAttr []attrSum
	digest  result.Digest
}

func newCountAcc(minute int64) *countAcc {
	return &countAcc{minute: minute, ads: map[string]*adAcc{}, attrIdx: map[attrs]uint32{}, dirty: map[string]struct{}{}}
}

func (a *countAcc) attrIndex(x attrs) uint32 {
	i, ok := a.attrIdx[x]
	if !ok {
		i = uint32(len(a.attrs))
		a.attrs = append(a.attrs, x)
		a.attrIdx[x] = i
	}
	return i
}

// apply merges p into the sets and returns what it changed (nil if
// nothing): the new clicks, and copies of known clicks whose attributes are
// smaller — the smallest wins, as in mergePartials, so the result does not
// depend on the order bundles arrive in.
func (a *countAcc) apply(p MinutePartial) *MinutePartial {
	var added *MinutePartial
	for i, ad := range p.Ads {
		part := p.Parts[i]
		remap := make([]uint32, len(part.Attrs))
		for k, x := range part.Attrs {
			remap[k] = a.attrIndex(x)
		}
		acc := a.ads[ad]
		if acc == nil {
			acc = &adAcc{ids: make(map[clickID]uint32, len(part.Entries)), digest: emptyDigest}
			a.ads[ad] = acc
		}
		var keep []entry
		for _, e := range part.Entries {
			ai := remap[e.Attr]
			for int(ai) >= len(acc.perAttr) {
				acc.perAttr = append(acc.perAttr, attrSum{Digest: emptyDigest})
			}
			old, seen := acc.ids[e.ID]
			switch {
			case !seen:
				acc.ids[e.ID] = ai
				acc.perAttr[ai].add(e.ID)
				acc.digest = acc.digest.Add(e.ID.digest())
			case a.attrs[ai].compare(a.attrs[old]) < 0:
				// The id moves to smaller attributes: its filters' sets change.
				acc.ids[e.ID] = ai
				acc.perAttr[old].remove(e.ID)
				acc.perAttr[ai].add(e.ID)
			default:
				continue
			}
			keep = append(keep, e)
		}
		if len(keep) == 0 {
			continue
		}
		a.dirty[ad] = struct{}{}
		if added == nil {
			added = &MinutePartial{Minute: p.Minute}
		}
		added.Ads = append(added.Ads, ad)
		added.Parts = append(added.Parts, Partial{Entries: keep, Attrs: part.Attrs})
	}
	return added
}

// counts is ad's count and filtered counts so far.
func (a *countAcc) counts(ad string) AdMinute {
	acc := a.ads[ad]
	return attrCounts(int64(len(acc.ids)), acc.digest, acc.perAttr, a.attrs)
}

// emit sends every changed ad's counts and their snapshot, and forgets
// that they changed.
func (a *countAcc) emit(emitRec func(result.Record), emitSnap func(string, MinuteSnapshot)) {
	if len(a.dirty) == 0 {
		return
	}
	snap := MinuteSnapshot{Minute: a.minute, Ads: make(map[string]int64, len(a.dirty))}
	for ad := range a.dirty {
		v := a.counts(ad)
		emitCounts(ad, a.minute, v, a.noDigests, emitRec)
		snap.Ads[ad] = v.Count
	}
	emitSnap("", snap)
	clear(a.dirty)
}

// load returns the key's decoded state: the cached copy when its version is
// current, else rebuilt from the bag (then every ad counts as changed, so
// that whatever an earlier worker had not emitted yet is emitted).
func (f *countFn) load(sp state.Provider, key string) (acc *countAcc, version int64, exists bool, err error) {
	version, exists, err = f.Version.Read(sp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("transforms: reading the version of %s: %w", key, err)
	}
	if exists && !f.NoCache {
		if v, ok := cacheOf(f.CacheID).take(key, version); ok {
			return v.(*countAcc), version, true, nil
		}
	}
	minute, _, _ := splitShardKey(key)
	acc = newCountAcc(minute)
	acc.noDigests = f.NoDigests
	if !exists {
		return acc, 0, false, nil
	}
	parts, _, err := f.Clicks.Read(sp)
	if err != nil {
		return nil, 0, false, fmt.Errorf("transforms: reading the clicks of %s: %w", key, err)
	}
	for _, p := range parts {
		acc.apply(p)
	}
	for ad := range acc.ads {
		acc.dirty[ad] = struct{}{}
	}
	return acc, version, true, nil
}

func (f *countFn) ProcessElement(ts beam.EventTime, sp state.Provider, tp timers.Provider, key string, p MinutePartial,
	emitRec func(result.Record), emitSnap func(string, MinuteSnapshot)) error {
	acc, version, exists, err := f.load(sp, key)
	if err != nil {
		return err
	}
	if !exists {
		f.Timer.Set(tp, time.UnixMilli((acc.minute+60)*1000+f.HorizonMS), timers.WithTag(tagExpiry))
	}
	if added := acc.apply(p); added != nil {
		if err := f.Clicks.Add(sp, *added); err != nil {
			return fmt.Errorf("transforms: appending to the clicks of %s: %w", key, err)
		}
		version = newVersion()
		if err := f.Version.Write(sp, version); err != nil {
			return fmt.Errorf("transforms: writing the version of %s: %w", key, err)
		}
	}
	if len(acc.dirty) > 0 {
		now := ts.Milliseconds()
		if acc.lastEmit == 0 || now >= acc.lastEmit+f.EmitEveryMS {
			acc.emit(emitRec, emitSnap)
			acc.lastEmit = now
		} else if acc.tickAt == 0 {
			acc.tickAt = acc.lastEmit + f.EmitEveryMS
			f.Timer.Set(tp, time.UnixMilli(acc.tickAt), timers.WithTag(tagTick))
		}
	}
	if version != 0 {
		cacheOf(f.CacheID).put(key, version, acc)
	}
	return nil
}

func (f *countFn) OnTimer(_ context.Context, ts beam.EventTime, sp state.Provider, _ timers.Provider, key string, tc timers.Context,
	emitRec func(result.Record), emitSnap func(string, MinuteSnapshot)) error {
	acc, version, exists, err := f.load(sp, key)
	if err != nil || !exists {
		return err
	}
	acc.emit(emitRec, emitSnap)
	acc.lastEmit, acc.tickAt = ts.Milliseconds(), 0
	if tc.Tag != tagExpiry {
		cacheOf(f.CacheID).put(key, version, acc)
		return nil
	}
	cacheOf(f.CacheID).drop(key)
	if err := f.Clicks.Clear(sp); err != nil {
		return fmt.Errorf("transforms: clearing the clicks of %s: %w", key, err)
	}
	if err := f.Version.Clear(sp); err != nil {
		return fmt.Errorf("transforms: clearing the version of %s: %w", key, err)
	}
	return nil
}
