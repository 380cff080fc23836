package transforms

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/adclick/adclick/domain/result"
)

// TestSlidingTopsEqualsSums: every list slidingTops emits equals the top-n
// of the window's sums computed from scratch (topOfSums), for random minutes
// with many ties, gaps between minutes, and several window sizes; and it
// emits exactly the windows that hold data.
func TestSlidingTopsEqualsSums(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		minutes := map[int64]map[string]int64{}
		base := int64(1_700_000_000 / 60 * 60)
		for range 1 + rng.IntN(30) {
			m := base + 60*int64(rng.IntN(90))
			ads := map[string]int64{}
			for range rng.IntN(60) {
				ads[fmt.Sprintf("ad%03d", rng.IntN(80))] += 1 + int64(rng.IntN(3))
			}
			if len(ads) > 0 {
				minutes[m] = ads
			}
		}
		for _, w := range []int{1, 5, 15, 60} {
			for _, n := range []int{1, 3, 100} {
				got := map[int64]bool{}
				slidingTops(minutes, w, n, func(last int64, top []result.AdCount) {
					got[last] = true
					window := map[int64]map[string]int64{}
					for m := last - int64(w-1)*60; m <= last; m += 60 {
						if ads, ok := minutes[m]; ok {
							window[m] = ads
						}
					}
					if want := topOfSums(window, n); !reflect.DeepEqual(top, want) {
						t.Fatalf("seed %d w %d n %d, window ending %d: got %v, want %v", seed, w, n, last, top, want)
					}
				})
				for m := range minutes {
					for end := m; end < m+int64(w)*60; end += 60 {
						if !got[end] {
							t.Fatalf("seed %d w %d: no list for the window ending %d, which holds minute %d", seed, w, end, m)
						}
					}
				}
			}
		}
	}
}

// BenchmarkSlidingTops is the batch top-N of one window size over 10 minutes
// of 2M-ad traffic (about 100k distinct ads a minute, Zipf-like counts).
func BenchmarkSlidingTops(b *testing.B) {
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 1, 2_000_000-1)
	minutes := map[int64]map[string]int64{}
	for m := range int64(10) {
		ads := map[string]int64{}
		for range 160_000 {
			ads[fmt.Sprintf("ad%07d", z.Uint64())]++
		}
		minutes[1_700_000_000/60*60+60*m] = ads
	}
	for _, w := range []int{1, 60} {
		b.Run(fmt.Sprintf("w%d", w), func(b *testing.B) {
			for range b.N {
				slidingTops(minutes, w, 100, func(int64, []result.AdCount) {})
			}
		})
	}
}

// slidingTops (for the tests: minutes as maps) computes the top-n list of every w-minute window that holds
// data, ending at each minute from the first minute with data to the last
// one plus w−1, and calls emit with the window's last minute (Unix s).
func slidingTops(minutes map[int64]map[string]int64, w, n int, emit func(last int64, top []result.AdCount)) {
	if len(minutes) == 0 {
		return
	}
	sorted := make([]minuteAds, 0, len(minutes))
	for m, ads := range minutes {
		ma := minuteAds{Minute: m}
		for ad := range ads {
			ma.Ads = append(ma.Ads, ad)
		}
		slices.Sort(ma.Ads)
		for _, ad := range ma.Ads {
			ma.Counts = append(ma.Counts, ads[ad])
		}
		sorted = append(sorted, ma)
	}
	slices.SortFunc(sorted, func(x, y minuteAds) int { return cmp.Compare(x.Minute, y.Minute) })
	newTopIndexSorted(sorted).slide(w, n, emit)
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
