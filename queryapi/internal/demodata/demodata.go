// Package demodata builds a deterministic, self-consistent set of aggregate
// records (counts, filtered counts and the top lists that follow from them)
// for the query API's browser test, screenshot and load benchmark. It stands
// in for data written through the pipeline where the pipeline is not the
// thing under test.
package demodata

import (
	"fmt"
	"math"
	"sort"

	"github.com/adclick/adclick/domain/result"
)

// Spec says what to generate.
type Spec struct {
	Start       int64 // first minute, Unix seconds (minute-aligned)
	Minutes     int   // how many minutes
	Ads         int   // how many ads
	WindowSizes []int // top-list window sizes
	TopN        int   // top-list length
}

// AdID is the id of the i-th generated ad.
func AdID(i int) string { return fmt.Sprintf("ad-%03d", i+1) }

// count is the unfiltered count of ad i in minute m: a slow wave per ad,
// different in phase and size, plus a little deterministic noise; never
// negative.
func count(i, m int) int64 {
	base := 400.0 / float64(i+1)
	wave := 1 + 0.35*math.Sin(2*math.Pi*float64(m+7*i)/45) + 0.1*math.Sin(2*math.Pi*float64(m)/7)
	noise := float64((m*31+i*17)%13) - 6
	c := int64(math.Round(base*wave + noise))
	if c < 0 {
		c = 0
	}
	return c
}

// Records returns the counts, the country/device/format filtered counts
// (US ≈ 40 %, mobile ≈ 60 %, banner ≈ 50 % of each count) and, for every
// window size and every minute whose window holds a click, the top list
// computed from the counts as docs/spec.md §2 defines it.
func Records(s Spec) []result.Record {
	var out []result.Record
	counts := make([][]int64, s.Ads)
	for i := 0; i < s.Ads; i++ {
		counts[i] = make([]int64, s.Minutes)
		for m := 0; m < s.Minutes; m++ {
			c := count(i, m)
			counts[i][m] = c
			min := s.Start + int64(m)*60
			out = append(out, result.Record{Count: &result.Count{AdID: AdID(i), Minute: min, Count: c}})
			for _, f := range []struct {
				id  string
				pct int64
			}{{"country:US", 40}, {"device:mobile", 60}, {"format:banner", 50}} {
				out = append(out, result.Record{Filtered: &result.FilteredCount{AdID: AdID(i), FilterID: f.id, Minute: min, Count: c * f.pct / 100}})
			}
		}
	}
	for _, w := range s.WindowSizes {
		// As the pipeline does, a list for every minute whose window holds
		// a click: up to w-1 minutes past the last minute of data.
		for m := 0; m < s.Minutes+w-1; m++ {
			ads := make([]result.AdCount, 0, s.Ads)
			for i := 0; i < s.Ads; i++ {
				var sum int64
				for k := m - w + 1; k <= m; k++ {
					if k >= 0 && k < s.Minutes {
						sum += counts[i][k]
					}
				}
				if sum > 0 {
					ads = append(ads, result.AdCount{AdID: AdID(i), Count: sum})
				}
			}
			sort.Slice(ads, func(a, b int) bool { return result.Less(ads[a], ads[b]) })
			if len(ads) > s.TopN {
				ads = ads[:s.TopN]
			}
			out = append(out, result.Record{Top: &result.Top{WindowSize: w, Minute: s.Start + int64(m)*60, Ads: ads}})
		}
	}
	return out
}
