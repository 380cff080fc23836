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

// countAcc is the decoded state of one (minute, shard). The unique clicks
// of all its ads are in one map, keyed by (ad, event id): a map per ad cost
// ~500 bytes a click at the seed's 2M ads, where most ads have a click or
// two in a minute (1.7 GB of heap after 150 s at 20,000 clicks/s); one map
// costs a few dozen.
type countAcc struct {
	minute   int64
	adIdx    map[string]uint32 // ad → index into ads and names
	ads      []adAcc
	names    []string
	ids      map[clickID]uint64 // a unique click → its ad's index << 32 | its attributes' index
	others   map[adClick]uint32 // an id also seen under a second ad → its attributes' index
	attrs    []attrs
	attrIdx  map[attrs]uint32
	dirty    map[uint32]struct{} // ads changed since the last emission
	lastEmit int64               // event time (ms) of the last emission
	tickAt   int64               // the tick timer's time, 0 when none is set

	noDigests bool // countFn.NoDigests
}

// adClick is one click of one ad: the same event id under two ads is two
// clicks, as in the batch path's per-(ad, minute) partials. Such ids are
// rare (a client bug, or forged events), so the first ad of an id lives in
// ids' value and only the others are keyed by (id, ad): a 24-byte map slot
// a click where the pair as the key took 32.
type adClick struct {
	id clickID
	ad uint32
}

// lookup returns the attributes' index of the click id of the ad at index
// ad, if it is known.
func (a *countAcc) lookup(id clickID, ad uint32) (uint32, bool) {
	v, ok := a.ids[id]
	if !ok {
		return 0, false
	}
	if uint32(v>>32) == ad {
		return uint32(v), true
	}
	at, ok := a.others[adClick{id, ad}]
	return at, ok
}

// store sets the attributes' index of the click id of the ad at index ad.
func (a *countAcc) store(id clickID, ad, attr uint32) {
	if v, ok := a.ids[id]; !ok || uint32(v>>32) == ad {
		a.ids[id] = uint64(ad)<<32 | uint64(attr)
		return
	}
	if a.others == nil {
		a.others = map[adClick]uint32{}
	}
	a.others[adClick{id, ad}] = attr
}

// adAcc is one ad's unique clicks in the minute: how many, and their
// digest, per attribute tuple it has clicks of (the ad's totals are their
// sums). Sparse: indexed by the (minute, shard)'s tuple index, a slice per
// ad grew to hundreds of entries for an ad with one click.
type adAcc struct {
	sums []tupleSum
	at   map[uint32]int // tuple index → position in sums, once sums is long
}

// tupleSum is the clicks of one attribute tuple (an index into
// countAcc.attrs).
type tupleSum struct {
	attr uint32
	attrSum
}

// tupleScan is how many tuples an ad's sums are searched linearly: most ads
// have one or a few; the hot ones get a map.
const tupleScan = 16

// sum returns the ad's sum for tuple attr, adding it if new.
func (c *adAcc) sum(attr uint32) *attrSum {
	if c.at != nil {
		if i, ok := c.at[attr]; ok {
			return &c.sums[i].attrSum
		}
	} else {
		for i := range c.sums {
			if c.sums[i].attr == attr {
				return &c.sums[i].attrSum
			}
		}
	}
	c.sums = append(c.sums, tupleSum{attr: attr, attrSum: attrSum{Digest: emptyDigest}})
	if c.at != nil {
		c.at[attr] = len(c.sums) - 1
	} else if len(c.sums) > tupleScan {
		c.at = make(map[uint32]int, 2*len(c.sums))
		for i, t := range c.sums {
			c.at[t.attr] = i
		}
	}
	return &c.sums[len(c.sums)-1].attrSum
}

func newCountAcc(minute int64) *countAcc {
	return &countAcc{minute: minute, adIdx: map[string]uint32{}, ids: map[clickID]uint64{}, attrIdx: map[attrs]uint32{}, dirty: map[uint32]struct{}{}}
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

func (a *countAcc) adIndex(ad string) uint32 {
	i, ok := a.adIdx[ad]
	if !ok {
		i = uint32(len(a.ads))
		a.ads = append(a.ads, adAcc{})
		a.names = append(a.names, ad)
		a.adIdx[ad] = i
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
		ai := a.adIndex(ad)
		acc := &a.ads[ai]
		var keep []entry
		for _, e := range part.Entries {
			at := remap[e.Attr]
			old, seen := a.lookup(e.ID, ai)
			switch {
			case !seen:
				a.store(e.ID, ai, at)
				acc.sum(at).add(e.ID)
			case a.attrs[at].compare(a.attrs[old]) < 0:
				// The id moves to smaller attributes: its filters' sets change.
				a.store(e.ID, ai, at)
				acc.sum(old).remove(e.ID)
				acc.sum(at).add(e.ID)
			default:
				continue
			}
			keep = append(keep, e)
		}
		if len(keep) == 0 {
			continue
		}
		a.dirty[ai] = struct{}{}
		if added == nil {
			added = &MinutePartial{Minute: p.Minute}
		}
		added.Ads = append(added.Ads, ad)
		added.Parts = append(added.Parts, Partial{Entries: keep, Attrs: part.Attrs})
	}
	return added
}

// counts is the count and filtered counts so far of the ad at index i.
func (a *countAcc) counts(i uint32) AdMinute {
	acc := &a.ads[i]
	n, d := int64(0), emptyDigest
	perAttr := make([]attrSum, len(acc.sums))
	as := make([]attrs, len(acc.sums))
	for k, s := range acc.sums {
		n, d = n+s.N, d.Add(s.Digest)
		perAttr[k], as[k] = s.attrSum, a.attrs[s.attr]
	}
	return attrCounts(n, d, perAttr, as)
}

// emit sends every changed ad's counts and their snapshot, and forgets
// that they changed.
func (a *countAcc) emit(emitRec func(result.Record), emitSnap func(string, MinuteSnapshot)) {
	if len(a.dirty) == 0 {
		return
	}
	snap := MinuteSnapshot{Minute: a.minute, Ads: make(map[string]int64, len(a.dirty))}
	for i := range a.dirty {
		v := a.counts(i)
		emitCounts(a.names[i], a.minute, v, a.noDigests, emitRec)
		snap.Ads[a.names[i]] = v.Count
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
	for i := range acc.ads {
		acc.dirty[uint32(i)] = struct{}{}
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
