package transforms

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zeebo/xxh3"
)

// MinutePartial is what leaves the fused stage: the unique clicks one bundle
// saw for the ads of one (minute, shard), grouped by ad. Ads is sorted and
// Parts[i] holds the clicks of Ads[i].
//
// The shuffle key is (minute, shard of the ad), not (ad, minute): the number
// of elements that cross the runner per bundle is then bounded by the open
// minutes times the shard count, whatever the number of ads. On prism every
// element and every pane costs far more than the clicks inside it
// (docs/architecture.md, "cost model").
type MinutePartial struct {
	Minute int64 // Unix seconds of the minute's start
	Ads    []string
	Parts  []Partial
}

// shardOf is the shard of an ad: every click of an ad, in every bundle, is
// aggregated under the same (minute, shard) key, so per-ad state never spans
// two keys.
func shardOf(adID string, shards int) int {
	return int(xxh3.HashString(adID) % uint64(shards))
}

// shardKey is the shuffle key "<minute>/<shard>".
func shardKey(minute int64, shard int) string {
	return strconv.FormatInt(minute, 10) + "/" + strconv.Itoa(shard)
}

func splitShardKey(k string) (minute int64, shard int, ok bool) {
	m, s, found := strings.Cut(k, "/")
	if !found {
		return 0, 0, false
	}
	mi, err := strconv.ParseInt(m, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	si, err := strconv.Atoi(s)
	if err != nil {
		return 0, 0, false
	}
	return mi, si, true
}

// mergeMinutePartials is the union of a and b per ad (both sorted by ad). It
// does not modify either.
func mergeMinutePartials(a, b MinutePartial) MinutePartial {
	if len(b.Ads) == 0 {
		return a
	}
	if len(a.Ads) == 0 {
		return b
	}
	out := MinutePartial{Minute: a.Minute, Ads: make([]string, 0, len(a.Ads)+len(b.Ads)), Parts: make([]Partial, 0, len(a.Ads)+len(b.Ads))}
	i, j := 0, 0
	for i < len(a.Ads) && j < len(b.Ads) {
		switch c := strings.Compare(a.Ads[i], b.Ads[j]); {
		case c < 0:
			out.Ads, out.Parts = append(out.Ads, a.Ads[i]), append(out.Parts, a.Parts[i])
			i++
		case c > 0:
			out.Ads, out.Parts = append(out.Ads, b.Ads[j]), append(out.Parts, b.Parts[j])
			j++
		default:
			out.Ads, out.Parts = append(out.Ads, a.Ads[i]), append(out.Parts, mergePartials(a.Parts[i], b.Parts[j]))
			i++
			j++
		}
	}
	out.Ads, out.Parts = append(out.Ads, a.Ads[i:]...), append(out.Parts, a.Parts[i:]...)
	out.Ads, out.Parts = append(out.Ads, b.Ads[j:]...), append(out.Parts, b.Parts[j:]...)
	return out
}

// sortByAd sorts p's ads (and their parts) by ad id.
func (p *MinutePartial) sortByAd() {
	idx := make([]int, len(p.Ads))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return strings.Compare(p.Ads[x], p.Ads[y]) })
	ads, parts := make([]string, len(idx)), make([]Partial, len(idx))
	for k, i := range idx {
		ads[k], parts[k] = p.Ads[i], p.Parts[i]
	}
	p.Ads, p.Parts = ads, parts
}

// encodeMinutePartial is the Beam coder of MinutePartial.
func encodeMinutePartial(p MinutePartial) ([]byte, error) {
	n := 2 * binary.MaxVarintLen64
	for i, ad := range p.Ads {
		n += binary.MaxVarintLen32 + len(ad) + partialSize(p.Parts[i])
	}
	b := make([]byte, 0, n)
	b = binary.AppendVarint(b, p.Minute)
	b = binary.AppendUvarint(b, uint64(len(p.Ads)))
	for i, ad := range p.Ads {
		b = appendStr(b, ad)
		b = appendPartial(b, p.Parts[i])
	}
	return b, nil
}

func decodeMinutePartial(b []byte) (MinutePartial, error) {
	var p MinutePartial
	m, n := binary.Varint(b)
	if n <= 0 {
		return p, errCorrupt
	}
	p.Minute = m
	b = b[n:]
	na, n := binary.Uvarint(b)
	if n <= 0 || na > uint64(len(b)) {
		return p, errCorrupt
	}
	b = b[n:]
	p.Ads, p.Parts = make([]string, na), make([]Partial, na)
	for i := range p.Ads {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return p, errCorrupt
		}
		p.Ads[i] = string(b[n : n+int(l)])
		b = b[n+int(l):]
		var err error
		if p.Parts[i], b, err = readPartial(b); err != nil {
			return p, err
		}
	}
	if len(b) != 0 {
		return p, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	return p, nil
}
