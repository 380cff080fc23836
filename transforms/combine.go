package transforms

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/adclick/adclick/transforms/result"
)

// mergeFn merges the partials of one (ad, minute) into its unique count and
// filtered counts. Set union makes every firing's value the exact count of
// the distinct clicks seen so far, and values only grow from pane to pane.
type mergeFn struct{}

func (mergeFn) CreateAccumulator() Partial             { return Partial{} }
func (mergeFn) AddInput(a, in Partial) Partial         { return mergePartials(a, in) }
func (mergeFn) MergeAccumulators(a, b Partial) Partial { return mergePartials(a, b) }
func (mergeFn) ExtractOutput(a Partial) AdMinute       { return a.counts() }

// explodeFn turns one (ad, minute) result into its count and filtered-count
// records, and feeds the per-minute snapshot that top-N is built from.
type explodeFn struct{}

func (explodeFn) ProcessElement(key string, v AdMinute, emitRec func(result.Record), emitAd func(string, AdCount)) {
	minute, adID, ok := splitAdMinuteKey(key)
	if !ok {
		return // keys are built by adMinuteKey; unreachable
	}
	emitRec(result.Record{Count: &result.Count{AdID: adID, Minute: minute, Count: v.Count}})
	for _, f := range v.Filters {
		emitRec(result.Record{Filtered: &result.FilteredCount{AdID: adID, FilterID: f.FilterID, Minute: minute, Count: f.Count}})
	}
	emitAd("", AdCount{AdID: adID, Count: v.Count})
}

// AdCount is one ad's count in a snapshot input.
type AdCount struct {
	AdID  string
	Count int64
}

// Snapshot holds every ad's count in one minute. Counts are accumulating
// pane values, so merging keeps the largest value seen for each ad: that is
// its latest.
type Snapshot struct {
	Ads map[string]int64
}

func maxInto(dst, src map[string]int64) {
	for ad, n := range src {
		if n > dst[ad] {
			dst[ad] = n
		}
	}
}

// snapshotFn builds a minute's Snapshot from the ads' counts.
type snapshotFn struct{}

func (snapshotFn) CreateAccumulator() Snapshot { return Snapshot{Ads: map[string]int64{}} }
func (snapshotFn) AddInput(a Snapshot, in AdCount) Snapshot {
	if a.Ads == nil {
		a.Ads = map[string]int64{}
	}
	if in.Count > a.Ads[in.AdID] {
		a.Ads[in.AdID] = in.Count
	}
	return a
}
func (snapshotFn) MergeAccumulators(a, b Snapshot) Snapshot {
	if a.Ads == nil {
		a.Ads = map[string]int64{}
	}
	maxInto(a.Ads, b.Ads)
	return a
}
func (snapshotFn) ExtractOutput(a Snapshot) Snapshot { return a }

// MinuteSnapshot is a Snapshot stamped with its minute (Unix seconds).
type MinuteSnapshot struct {
	Minute int64
	Ads    map[string]int64
}

// stampMinuteFn reads the minute from the fixed window: a CombineFn cannot
// see its window.
func stampMinuteFn(w beam.Window, _ string, s Snapshot, emit func(string, MinuteSnapshot)) {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return // the snapshot stage is always in fixed windows
	}
	emit("", MinuteSnapshot{Minute: iw.Start.Milliseconds() / 1000, Ads: s.Ads})
}

// Minutes holds, for one sliding window, each minute's latest snapshot.
type Minutes struct {
	M map[int64]map[string]int64
}

// topFn computes a W-minute window's top-N from its minutes' snapshots:
// per-ad sums of the latest per-minute counts, ordered by count descending
// then ad_id ascending (SPEC §2).
type topFn struct {
	N int
}

func (topFn) CreateAccumulator() Minutes { return Minutes{M: map[int64]map[string]int64{}} }
func (topFn) AddInput(a Minutes, in MinuteSnapshot) Minutes {
	if a.M == nil {
		a.M = map[int64]map[string]int64{}
	}
	dst := a.M[in.Minute]
	if dst == nil {
		dst = make(map[string]int64, len(in.Ads))
		a.M[in.Minute] = dst
	}
	maxInto(dst, in.Ads)
	return a
}
func (topFn) MergeAccumulators(a, b Minutes) Minutes {
	if a.M == nil {
		a.M = map[int64]map[string]int64{}
	}
	for m, ads := range b.M {
		dst := a.M[m]
		if dst == nil {
			dst = make(map[string]int64, len(ads))
			a.M[m] = dst
		}
		maxInto(dst, ads)
	}
	return a
}
func (f topFn) ExtractOutput(a Minutes) []result.AdCount {
	return topOfSums(a.M, f.N)
}

// topOfSums sums each ad over the minutes and returns the n best.
func topOfSums(minutes map[int64]map[string]int64, n int) []result.AdCount {
	sums := make(map[string]int64)
	for _, ads := range minutes {
		for ad, c := range ads {
			sums[ad] += c
		}
	}
	all := make([]result.AdCount, 0, len(sums))
	for ad, c := range sums {
		all = append(all, result.AdCount{AdID: ad, Count: c})
	}
	return topOf(all, n)
}

// topOf returns the n best of all (which it reorders).
func topOf(all []result.AdCount, n int) []result.AdCount {
	cmpAd := func(a, b result.AdCount) int {
		if result.Less(a, b) {
			return -1
		}
		if result.Less(b, a) {
			return 1
		}
		return 0
	}
	if len(all) > 4*n {
		// Partial selection: keep the n best in a bounded sorted slice.
		best := make([]result.AdCount, 0, n+1)
		for _, x := range all {
			if len(best) == n && !result.Less(x, best[n-1]) {
				continue
			}
			i, _ := slices.BinarySearchFunc(best, x, cmpAd)
			best = slices.Insert(best, i, x)
			if len(best) > n {
				best = best[:n]
			}
		}
		return best
	}
	slices.SortFunc(all, cmpAd)
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// topRecordFn stamps a top list with its window size and last minute.
type topRecordFn struct {
	WindowSize int
}

func (f *topRecordFn) ProcessElement(w beam.Window, _ string, ads []result.AdCount, emit func(result.Record)) {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return
	}
	last := iw.End.Milliseconds()/1000 - 60
	emit(result.Record{Top: &result.Top{WindowSize: f.WindowSize, Minute: last, Ads: ads}})
}

// Coders for the types that cross shuffles: compact and reflection-free.

func encodeAdCounts(m map[string]int64, b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for ad, n := range m {
		b = binary.AppendUvarint(b, uint64(len(ad)))
		b = append(b, ad...)
		b = binary.AppendVarint(b, n)
	}
	return b
}

func decodeAdCounts(b []byte) (map[string]int64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errCorruptSnapshot
	}
	b = b[k:]
	m := make(map[string]int64, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, errCorruptSnapshot
		}
		ad := string(b[k : k+int(l)])
		b = b[k+int(l):]
		c, k2 := binary.Varint(b)
		if k2 <= 0 {
			return nil, nil, errCorruptSnapshot
		}
		b = b[k2:]
		m[ad] = c
	}
	return m, b, nil
}

var errCorruptSnapshot = errors.New("transforms: corrupt snapshot encoding")

func encodeSnapshot(s Snapshot) ([]byte, error) { return encodeAdCounts(s.Ads, nil), nil }
func decodeSnapshot(b []byte) (Snapshot, error) {
	m, rest, err := decodeAdCounts(b)
	if err == nil && len(rest) != 0 {
		err = errCorruptSnapshot
	}
	return Snapshot{Ads: m}, err
}

func encodeMinuteSnapshot(s MinuteSnapshot) ([]byte, error) {
	return encodeAdCounts(s.Ads, binary.AppendVarint(nil, s.Minute)), nil
}
func decodeMinuteSnapshot(b []byte) (MinuteSnapshot, error) {
	m, k := binary.Varint(b)
	if k <= 0 {
		return MinuteSnapshot{}, errCorruptSnapshot
	}
	ads, rest, err := decodeAdCounts(b[k:])
	if err == nil && len(rest) != 0 {
		err = errCorruptSnapshot
	}
	return MinuteSnapshot{Minute: m, Ads: ads}, err
}

func encodeMinutes(s Minutes) ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(s.M)))
	for m, ads := range s.M {
		b = binary.AppendVarint(b, m)
		b = encodeAdCounts(ads, b)
	}
	return b, nil
}
func decodeMinutes(b []byte) (Minutes, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return Minutes{}, errCorruptSnapshot
	}
	b = b[k:]
	out := Minutes{M: make(map[int64]map[string]int64, n)}
	for i := uint64(0); i < n; i++ {
		m, k := binary.Varint(b)
		if k <= 0 {
			return Minutes{}, errCorruptSnapshot
		}
		ads, rest, err := decodeAdCounts(b[k:])
		if err != nil {
			return Minutes{}, err
		}
		out.M[m] = ads
		b = rest
	}
	if len(b) != 0 {
		return Minutes{}, errCorruptSnapshot
	}
	return out, nil
}
