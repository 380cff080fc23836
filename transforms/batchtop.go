package transforms

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/adclick/adclick/domain/result"
)

// The batch top-N: each shard's minutes are gathered under the shard's key
// (gatherFn), every window size slides over them there (shardTopsFn), and
// the shards' lists of each window are merged (topMergeFn). A window's n
// best ads overall are among the n best of their own shard (restricting the
// order to a shard keeps it), so the merged list is exact. Nothing is ever
// gathered under one key, and the per-minute counts travel as sorted
// slices, never as maps: with millions of ads, hashing every ad of every
// minute again was most of a recount's top-N cost.

// minuteAds is one (minute, shard)'s ad counts, sorted by ad.
type minuteAds struct {
	Minute int64
	Ads    []string
	Counts []int64
}

// shardMinutes is one shard's minutes, each at most once.
type shardMinutes struct {
	Minutes []minuteAds
}

// gatherFn collects a shard's minutes. A batch shuffle gives each (minute,
// shard) exactly one merged partial, so there is one minuteAds per minute;
// a repeated minute (never expected) keeps each ad's larger count.
type gatherFn struct{}

func (gatherFn) CreateAccumulator() shardMinutes { return shardMinutes{} }
func (gatherFn) AddInput(a shardMinutes, in minuteAds) shardMinutes {
	a.Minutes = append(a.Minutes, in)
	return a
}
func (gatherFn) MergeAccumulators(a, b shardMinutes) shardMinutes {
	a.Minutes = append(a.Minutes, b.Minutes...)
	return a
}
func (gatherFn) ExtractOutput(a shardMinutes) shardMinutes {
	slices.SortFunc(a.Minutes, func(x, y minuteAds) int { return cmp.Compare(x.Minute, y.Minute) })
	out := a.Minutes[:0]
	for _, m := range a.Minutes {
		if k := len(out); k > 0 && out[k-1].Minute == m.Minute {
			out[k-1] = maxMinuteAds(out[k-1], m)
			continue
		}
		out = append(out, m)
	}
	a.Minutes = out
	return a
}

// maxMinuteAds is the union of two sorted minutes, the larger count per ad.
func maxMinuteAds(a, b minuteAds) minuteAds {
	out := minuteAds{Minute: a.Minute}
	i, j := 0, 0
	for i < len(a.Ads) || j < len(b.Ads) {
		switch {
		case j == len(b.Ads) || i < len(a.Ads) && a.Ads[i] < b.Ads[j]:
			out.Ads, out.Counts = append(out.Ads, a.Ads[i]), append(out.Counts, a.Counts[i])
			i++
		case i == len(a.Ads) || b.Ads[j] < a.Ads[i]:
			out.Ads, out.Counts = append(out.Ads, b.Ads[j]), append(out.Counts, b.Counts[j])
			j++
		default:
			out.Ads, out.Counts = append(out.Ads, a.Ads[i]), append(out.Counts, max(a.Counts[i], b.Counts[j]))
			i, j = i+1, j+1
		}
	}
	return out
}

// shardTopsFn emits, for every window size and window end, the shard's top
// n, keyed by topKey for topMergeFn.
type shardTopsFn struct {
	WindowSizes []int
	N           int
}

func (f *shardTopsFn) ProcessElement(_ string, sm shardMinutes, emit func(string, result.Record)) {
	if len(sm.Minutes) == 0 {
		return
	}
	t := newTopIndexSorted(sm.Minutes)
	for _, w := range f.WindowSizes {
		t.slide(w, f.N, func(last int64, top []result.AdCount) {
			emit(topKey(w, last), result.Record{Top: &result.Top{WindowSize: w, Minute: last, Ads: top}})
		})
	}
}

func topKey(w int, minute int64) string {
	return strconv.Itoa(w) + "/" + strconv.FormatInt(minute, 10)
}

// topMergeFn merges the shards' lists of one window: their ads are
// disjoint, so the window's list is the n best of their union.
type topMergeFn struct {
	N int
}

func (topMergeFn) CreateAccumulator() result.Record { return result.Record{} }
func (f topMergeFn) AddInput(a, in result.Record) result.Record {
	return f.MergeAccumulators(a, in)
}
func (f topMergeFn) MergeAccumulators(a, b result.Record) result.Record {
	if a.Top == nil {
		return b
	}
	if b.Top == nil {
		return a
	}
	all := make([]result.AdCount, 0, len(a.Top.Ads)+len(b.Top.Ads))
	all = append(append(all, a.Top.Ads...), b.Top.Ads...)
	return result.Record{Top: &result.Top{WindowSize: a.Top.WindowSize, Minute: a.Top.Minute, Ads: topOf(all, f.N)}}
}
func (topMergeFn) ExtractOutput(a result.Record) result.Record { return a }

// dropTopKeyFn emits the merged lists.
func dropTopKeyFn(_ string, r result.Record, emit func(result.Record)) {
	if r.Top != nil {
		emit(r)
	}
}

// newTopIndexSorted indexes minutes whose ads are sorted: a k-way merge of
// the minutes gives every ad its dense index in ad_id order without a map
// or a sort of all ids.
func newTopIndexSorted(minutes []minuteAds) *topIndex {
	lo, hi := minutes[0].Minute, minutes[len(minutes)-1].Minute
	t := &topIndex{lo: lo, byMinute: make([][]adCount, (hi-lo)/60+1)}
	h := &cursorHeap{minutes: minutes, cs: make([]cursor, 0, len(minutes))}
	for i, m := range minutes {
		t.byMinute[(m.Minute-lo)/60] = make([]adCount, 0, len(m.Ads))
		if len(m.Ads) > 0 {
			h.cs = append(h.cs, cursor{m: i})
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		c := h.cs[0]
		m := &minutes[c.m]
		ad := m.Ads[c.i]
		if k := len(t.names); k == 0 || t.names[k-1] != ad {
			t.names = append(t.names, ad)
		}
		slot := (m.Minute - lo) / 60
		t.byMinute[slot] = append(t.byMinute[slot], adCount{int32(len(t.names) - 1), m.Counts[c.i]})
		if c.i+1 < len(m.Ads) {
			h.cs[0].i++
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return t
}

type cursor struct{ m, i int }

// cursorHeap orders cursors into sorted minutes by their current ad.
type cursorHeap struct {
	cs      []cursor
	minutes []minuteAds
}

func (h cursorHeap) Len() int { return len(h.cs) }
func (h cursorHeap) Less(a, b int) bool {
	x, y := h.cs[a], h.cs[b]
	return strings.Compare(h.minutes[x.m].Ads[x.i], h.minutes[y.m].Ads[y.i]) < 0
}
func (h cursorHeap) Swap(a, b int) { h.cs[a], h.cs[b] = h.cs[b], h.cs[a] }
func (h *cursorHeap) Push(x any)   { h.cs = append(h.cs, x.(cursor)) }
func (h *cursorHeap) Pop() any {
	x := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return x
}

// Coders.

func appendMinuteAds(b []byte, m minuteAds) []byte {
	b = binary.AppendVarint(b, m.Minute)
	b = binary.AppendUvarint(b, uint64(len(m.Ads)))
	for i, ad := range m.Ads {
		b = appendStr(b, ad)
		b = binary.AppendVarint(b, m.Counts[i])
	}
	return b
}

func readMinuteAds(b []byte) (minuteAds, []byte, error) {
	r := &recReader{b: b}
	m := minuteAds{Minute: r.varint()}
	n, k := binary.Uvarint(r.b)
	if r.err != nil || k <= 0 || n > uint64(len(r.b)) {
		return minuteAds{}, nil, errCorruptSnapshot
	}
	r.b = r.b[k:]
	m.Ads, m.Counts = make([]string, n), make([]int64, n)
	for i := range m.Ads {
		m.Ads[i], m.Counts[i] = r.str(), r.varint()
	}
	if r.err != nil {
		return minuteAds{}, nil, errCorruptSnapshot
	}
	return m, r.b, nil
}

func encodeMinuteAds(m minuteAds) ([]byte, error) { return appendMinuteAds(nil, m), nil }
func decodeMinuteAds(b []byte) (minuteAds, error) {
	m, rest, err := readMinuteAds(b)
	if err == nil && len(rest) != 0 {
		err = errCorruptSnapshot
	}
	return m, err
}

func encodeShardMinutes(s shardMinutes) ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(s.Minutes)))
	for _, m := range s.Minutes {
		b = appendMinuteAds(b, m)
	}
	return b, nil
}

func decodeShardMinutes(b []byte) (shardMinutes, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return shardMinutes{}, errCorruptSnapshot
	}
	b = b[k:]
	s := shardMinutes{Minutes: make([]minuteAds, n)}
	for i := range s.Minutes {
		var err error
		if s.Minutes[i], b, err = readMinuteAds(b); err != nil {
			return shardMinutes{}, err
		}
	}
	if len(b) != 0 {
		return shardMinutes{}, errCorruptSnapshot
	}
	return s, nil
}
