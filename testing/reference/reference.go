// Package reference is test scaffolding: the oracle of the tests, an
// independent, deliberately naive implementation of the semantics of
// docs/spec.md — encoding/json instead of the production parser, plain maps,
// no Beam, no hashing. It shares no code with the implementation under test
// but the result types.
package reference

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"testing"

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
}

// Recount computes the results docs/spec.md defines of lines in order (first copy counts).
// skip, if not nil, names event ids to leave out (too-late clicks).
func Recount(lines [][]byte, windowSizes []int, topN int, skip map[string]bool) Results {
	r := Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{}}
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
		perMinute[am{c.AdID, c.Minute}]++
		for _, f := range [][2]string{{"country", c.Country}, {"device", c.Device}, {"format", c.Format}} {
			if f[1] != "" {
				r.Filtered[m+"/"+f[0]+":"+f[1]+"/"+c.AdID]++
			}
		}
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
	r := Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{}}
	for _, rec := range recs {
		switch {
		case rec.Count != nil:
			r.Counts[strconv.FormatInt(rec.Count.Minute, 10)+"/"+rec.Count.AdID] = rec.Count.Count
		case rec.Filtered != nil:
			r.Filtered[strconv.FormatInt(rec.Filtered.Minute, 10)+"/"+rec.Filtered.FilterID+"/"+rec.Filtered.AdID] = rec.Filtered.Count
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
	r := Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{}}
	tops := map[string]map[string]int64{}
	for _, rec := range recs {
		switch {
		case rec.Count != nil:
			k := fmt.Sprintf("%d/%s", rec.Count.Minute, rec.Count.AdID)
			r.Counts[k] = max(r.Counts[k], rec.Count.Count)
		case rec.Filtered != nil:
			k := fmt.Sprintf("%d/%s/%s", rec.Filtered.Minute, rec.Filtered.FilterID, rec.Filtered.AdID)
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
