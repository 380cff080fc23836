package transforms

import (
	"encoding/binary"
	"errors"
	"slices"
	"strconv"

	"github.com/adclick/adclick/domain/result"
)

// mergeMinuteFn merges the partials of one (minute, shard) by set union per
// ad: the batch path's only aggregation of clicks.
type mergeMinuteFn struct{}

func (mergeMinuteFn) CreateAccumulator() MinutePartial { return MinutePartial{} }
func (mergeMinuteFn) AddInput(a, in MinutePartial) MinutePartial {
	return mergeMinutePartials(a, in)
}
func (mergeMinuteFn) MergeAccumulators(a, b MinutePartial) MinutePartial {
	return mergeMinutePartials(a, b)
}
func (mergeMinuteFn) ExtractOutput(a MinutePartial) MinutePartial { return a }

// explodeMinuteFn turns one (minute, shard)'s merged clicks into count and
// filtered-count records, and the minute's ad counts (sorted by ad, as the
// partial is) for the shard's top-N (batchtop.go).
type explodeMinuteFn struct {
	NoDigests bool // Config.WithoutDigests
}

func (f explodeMinuteFn) ProcessElement(key string, p MinutePartial, emitRec func(result.Record), emitAds func(string, minuteAds)) {
	minute, shard, ok := splitShardKey(key)
	if !ok {
		return // keys are built by shardKey; unreachable
	}
	ads := minuteAds{Minute: minute, Ads: p.Ads, Counts: make([]int64, len(p.Ads))}
	for i, ad := range p.Ads {
		v := p.Parts[i].counts()
		emitCounts(ad, minute, v, f.NoDigests, emitRec)
		ads.Counts[i] = v.Count
	}
	emitAds(strconv.Itoa(shard), ads)
}

// emitCounts emits an (ad, minute)'s count and filtered counts, without
// their digests when noDigests (Config.WithoutDigests).
func emitCounts(adID string, minute int64, v AdMinute, noDigests bool, emitRec func(result.Record)) {
	if noDigests {
		v.Digest = result.Digest{}
		for i := range v.Filters {
			v.Filters[i].Digest = result.Digest{}
		}
	}
	emitRec(result.Record{Count: &result.Count{AdID: adID, Minute: minute, Count: v.Count, Digest: v.Digest}})
	for _, f := range v.Filters {
		emitRec(result.Record{Filtered: &result.FilteredCount{AdID: adID, FilterID: f.FilterID, Minute: minute, Count: f.Count, Digest: f.Digest}})
	}
}

// AdCount is one ad's count.
type AdCount struct {
	AdID  string
	Count int64
}

// MinuteSnapshot holds ads' counts in one minute (Unix seconds).
type MinuteSnapshot struct {
	Minute int64
	Ads    map[string]int64
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
