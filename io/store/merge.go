package store

import (
	"cmp"
	"slices"

	"github.com/adclick/adclick/domain/result"
)

// MergeTop merges two top lists of one window: each ad keeps the larger of
// its two counts, the ads are ranked by count descending then ad_id
// ascending (docs/spec.md §2), and the first max(len(a), len(b)) are kept.
//
// It is right for the streaming job's panes, whose per-ad counts only grow:
// merging an older pane with a newer one gives the newer one (an ad that fell
// out of the newer list has an older count at most its current one, which
// ranks below the newer list's last), and merging a stored final list with a
// pane recomputed from part of the data after a restart keeps the final list.
func MergeTop(a, b []result.AdCount) []result.AdCount {
	n := max(len(a), len(b))
	by := make(map[string]int64, len(a)+len(b))
	for _, l := range [][]result.AdCount{a, b} {
		for _, x := range l {
			if c, ok := by[x.AdID]; !ok || x.Count > c {
				by[x.AdID] = x.Count
			}
		}
	}
	return TopOf(by, n)
}

// TopOf ranks the ads of by (ad → count) by count descending, then ad_id
// ascending (docs/spec.md §2), and returns the first n.
func TopOf(by map[string]int64, n int) []result.AdCount {
	out := make([]result.AdCount, 0, len(by))
	for ad, c := range by {
		out = append(out, result.AdCount{AdID: ad, Count: c})
	}
	slices.SortFunc(out, func(x, y result.AdCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.AdID, y.AdID)
	})
	return out[:min(n, len(out))]
}
