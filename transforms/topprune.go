package transforms

import "slices"

// candidates marks the ads that can be in the top-n list of some w-minute
// window of t; slide ignores the others, which changes no list. With many
// ads most of them have a click or two, and a top list of hot ads never
// reaches them.
//
// Why it is exact: let floor(m) be the n-th largest count in minute m (0
// with fewer than n ads). The n best ads of m each sum to at least floor(m)
// in every window holding m, so a window's n-th best sum is at least
// bound(E) = the largest floor of its minutes, and an ad whose sum there is
// below bound(E) has n ads strictly ahead of it. An ad's sum in any window
// is at most its total, and it has a sum only in windows ending from its
// first minute to its last + w − 1; so if its total is below the smallest
// bound over those ends, it is in no list. Ties are kept (strict <).
func (t *topIndex) candidates(w, n int) []bool {
	k := len(t.byMinute)
	floor := make([]int64, k)
	var counts []int64
	for i, ads := range t.byMinute {
		if len(ads) < n {
			continue
		}
		counts = counts[:0]
		for _, e := range ads {
			counts = append(counts, e.count)
		}
		slices.Sort(counts)
		floor[i] = counts[len(counts)-n]
	}
	// bound[E] for the window ending at minute offset E, E in [0, k+w−1).
	bound := make([]int64, k+w-1)
	for e := range bound {
		for m := max(0, e-w+1); m <= min(e, k-1); m++ {
			bound[e] = max(bound[e], floor[m])
		}
	}
	rmq := newRangeMin(bound)
	first := make([]int32, len(t.names))
	last := make([]int32, len(t.names))
	total := make([]int64, len(t.names))
	for i := range first {
		first[i] = -1
	}
	for m, ads := range t.byMinute {
		for _, e := range ads {
			if first[e.ad] < 0 {
				first[e.ad] = int32(m)
			}
			last[e.ad] = int32(m)
			total[e.ad] += e.count
		}
	}
	keep := make([]bool, len(t.names))
	for ad := range keep {
		if first[ad] >= 0 {
			keep[ad] = total[ad] >= rmq.min(int(first[ad]), int(last[ad])+w-1)
		}
	}
	return keep
}

// rangeMin answers minimum queries over a fixed slice in O(1) (a sparse
// table: level j holds the minimum of each run of 2^j values).
type rangeMin struct{ levels [][]int64 }

func newRangeMin(v []int64) rangeMin {
	r := rangeMin{levels: [][]int64{slices.Clone(v)}}
	for span := 2; span <= len(v); span *= 2 {
		prev := r.levels[len(r.levels)-1]
		cur := make([]int64, len(v)-span+1)
		for i := range cur {
			cur[i] = min(prev[i], prev[i+span/2])
		}
		r.levels = append(r.levels, cur)
	}
	return r
}

// min is the minimum of v[lo..hi], both included (lo ≤ hi).
func (r rangeMin) min(lo, hi int) int64 {
	j := 0
	for 2<<j <= hi-lo+1 {
		j++
	}
	return min(r.levels[j][lo], r.levels[j][hi-(1<<j)+1])
}
