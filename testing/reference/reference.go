// Package reference is test scaffolding: the oracle of the tests, an
// independent, deliberately naive implementation of the semantics of
// docs/spec.md — encoding/json instead of the production parser, plain maps,
// no Beam, no hashing but the digests' definition (the sum modulo 2^128 of
// each counted event id's 128-bit XXH3 hash, computed here from the id with
// big integers). It shares no code with the implementation under test but
// the result types.
package reference

import (
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"testing"

	"github.com/zeebo/xxh3"

	"github.com/adclick/adclick/domain/result"
)

// Results are the expected outputs, keyed like result.Record.Key.
type Results struct {
	Counts   map[string]int64 // "minute/ad" → count
	Filtered map[string]int64 // "minute/filter/ad" → count
	Top      map[string][]result.AdCount
	Valid    int // unique valid clicks
	Rejected int
	Dups     int
	// Digests holds each count's and filtered count's digest, keyed
	// "c/"+Counts key and "f/"+Filtered key; a key is absent when the
	// digest is unknown.
	Digests map[string]result.Digest
}

// Recount computes the results docs/spec.md defines of lines in order (first copy counts).
// skip, if not nil, names event ids to leave out (too-late clicks).
func Recount(lines [][]byte, windowSizes []int, topN int, skip map[string]bool) Results {
	r := Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{}}
	sums := map[string]*big.Int{}
	seen := map[string]bool{}
	type am struct {
		ad string
		m  int64
	}
	perMinute := map[am]int64{}
	for _, l := range lines {
		c, ok := Valid(l)
		if !ok {
			r.Rejected++
			continue
		}
		if seen[c.EventID] {
			r.Dups++
			continue
		}
		seen[c.EventID] = true
		if skip[c.EventID] {
			continue
		}
		r.Valid++
		m := strconv.FormatInt(c.Minute, 10)
		r.Counts[m+"/"+c.AdID]++
		h := idHash(c.EventID)
		addTo(sums, "c/"+m+"/"+c.AdID, h)
		perMinute[am{c.AdID, c.Minute}]++
		for _, f := range [][2]string{{"country", c.Country}, {"device", c.Device}, {"format", c.Format}} {
			if f[1] != "" {
				r.Filtered[m+"/"+f[0]+":"+f[1]+"/"+c.AdID]++
				addTo(sums, "f/"+m+"/"+f[0]+":"+f[1]+"/"+c.AdID, h)
			}
		}
	}
	r.Digests = make(map[string]result.Digest, len(sums))
	for k, v := range sums {
		r.Digests[k] = digestOf(v)
	}
	for _, w := range windowSizes {
		ends := map[int64]bool{}
		for k := range perMinute {
			for i := 0; i < w; i++ {
				ends[k.m+int64(60*i)] = true
			}
		}
		for end := range ends {
			sums := map[string]int64{}
			for k, n := range perMinute {
				if k.m <= end && k.m > end-int64(60*w) {
					sums[k.ad] += n
				}
			}
			var list []result.AdCount
			for ad, n := range sums {
				list = append(list, result.AdCount{AdID: ad, Count: n})
			}
			sort.Slice(list, func(i, j int) bool {
				if list[i].Count != list[j].Count {
					return list[i].Count > list[j].Count
				}
				return list[i].AdID < list[j].AdID
			})
			if len(list) > topN {
				list = list[:topN]
			}
			r.Top[strconv.Itoa(w)+"/"+strconv.FormatInt(end, 10)] = list
		}
	}
	return r
}

// FromRecords indexes produced records like Results, keeping for each key the
// record seen last (accumulating panes: the last write wins) — callers pass
// records in arrival order, or only final values.
func FromRecords(recs []result.Record) Results {
	r := Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{},
		Digests: map[string]result.Digest{}}
	for _, rec := range recs {
		switch {
		case rec.Count != nil:
			k := strconv.FormatInt(rec.Count.Minute, 10) + "/" + rec.Count.AdID
			r.Counts[k] = rec.Count.Count
			setDigest(r.Digests, "c/"+k, rec.Count.Digest)
		case rec.Filtered != nil:
			k := strconv.FormatInt(rec.Filtered.Minute, 10) + "/" + rec.Filtered.FilterID + "/" + rec.Filtered.AdID
			r.Filtered[k] = rec.Filtered.Count
			setDigest(r.Digests, "f/"+k, rec.Filtered.Digest)
		case rec.Top != nil:
			ads := rec.Top.Ads
			if len(ads) == 0 {
				ads = nil
			}
			r.Top[strconv.Itoa(rec.Top.WindowSize)+"/"+strconv.FormatInt(rec.Top.Minute, 10)] = ads
		}
	}
	return r
}

// Finals reduces accumulating panes, in any order, to final values: counts
// only grow from pane to pane, so a key's final count is its largest; a top
// list's final value is the top-N of each ad's largest count over the panes.
func Finals(recs []result.Record, topN int) Results {
	r := Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{},
		Digests: map[string]result.Digest{}}
	tops := map[string]map[string]int64{}
	for _, rec := range recs {
		switch {
		case rec.Count != nil:
			k := fmt.Sprintf("%d/%s", rec.Count.Minute, rec.Count.AdID)
			if rec.Count.Count >= r.Counts[k] { // the digest of the final (largest) count
				setDigest(r.Digests, "c/"+k, rec.Count.Digest)
			}
			r.Counts[k] = max(r.Counts[k], rec.Count.Count)
		case rec.Filtered != nil:
			k := fmt.Sprintf("%d/%s/%s", rec.Filtered.Minute, rec.Filtered.FilterID, rec.Filtered.AdID)
			if rec.Filtered.Count >= r.Filtered[k] {
				setDigest(r.Digests, "f/"+k, rec.Filtered.Digest)
			}
			r.Filtered[k] = max(r.Filtered[k], rec.Filtered.Count)
		case rec.Top != nil:
			k := fmt.Sprintf("%d/%d", rec.Top.WindowSize, rec.Top.Minute)
			if tops[k] == nil {
				tops[k] = map[string]int64{}
			}
			for _, a := range rec.Top.Ads {
				tops[k][a.AdID] = max(tops[k][a.AdID], a.Count)
			}
		}
	}
	for k, ads := range tops {
		var l []result.AdCount
		for ad, n := range ads {
			l = append(l, result.AdCount{AdID: ad, Count: n})
		}
		sort.Slice(l, func(i, j int) bool { return result.Less(l[i], l[j]) })
		if len(l) > topN {
			l = l[:topN]
		}
		r.Top[k] = l
	}
	return r
}

func Compare(t testing.TB, got, want Results) {
	t.Helper()
	diff := func(name string, g, w map[string]int64) {
		n := 0
		for k, v := range w {
			if g[k] != v {
				if n++; n <= 5 {
					t.Errorf("%s[%s] = %d, want %d", name, k, g[k], v)
				}
			}
		}
		for k, v := range g {
			if _, ok := w[k]; !ok {
				if n++; n <= 5 {
					t.Errorf("%s[%s] = %d, want no record", name, k, v)
				}
			}
		}
		if n > 0 {
			t.Errorf("%s: %d keys differ (of %d expected)", name, n, len(w))
		}
	}
	diff("count", got.Counts, want.Counts)
	diff("filtered", got.Filtered, want.Filtered)
	if len(got.Top) != len(want.Top) {
		t.Errorf("top lists: %d, want %d", len(got.Top), len(want.Top))
	}
	n := 0
	for k, w := range want.Top {
		if !reflect.DeepEqual(got.Top[k], w) {
			if n++; n <= 3 {
				t.Errorf("top[%s] = %v, want %v", k, got.Top[k], w)
			}
		}
	}
	if len(want.Counts) == 0 {
		t.Fatal("test input produced no counts: the comparison would be vacuous")
	}
}

// idHash is an event id's 128-bit XXH3 hash as an integer.
func idHash(eventID string) *big.Int {
	h := xxh3.HashString128(eventID).Bytes() // big-endian, Hi first
	return new(big.Int).SetBytes(h[:])
}

var mod128 = new(big.Int).Lsh(big.NewInt(1), 128)

func addTo(sums map[string]*big.Int, k string, h *big.Int) {
	if sums[k] == nil {
		sums[k] = new(big.Int)
	}
	sums[k].Add(sums[k], h)
	sums[k].Mod(sums[k], mod128)
}

func digestOf(v *big.Int) result.Digest {
	var b [16]byte
	v.FillBytes(b[:])
	return result.DigestFromBytes(b[:])
}

func setDigest(m map[string]result.Digest, k string, d result.Digest) {
	if d.Known {
		m[k] = d
	} else {
		delete(m, k)
	}
}

// CompareDigests checks that got has want's digest for every count and
// filtered count want has (so the keys and counts are Compare's concern).
func CompareDigests(t testing.TB, got, want Results) {
	t.Helper()
	if len(want.Digests) == 0 {
		t.Fatal("the expected results hold no digests: the comparison would be vacuous")
	}
	n := 0
	for k, w := range want.Digests {
		if g, ok := got.Digests[k]; !ok || g != w {
			if n++; n <= 5 {
				t.Errorf("digest[%s] = %v, want %v", k, g, w)
			}
		}
	}
	if n > 0 {
		t.Errorf("digests: %d of %d differ", n, len(want.Digests))
	}
}
