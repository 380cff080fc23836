package transforms

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
)

// TestTopStageStateIsBounded runs the top stage's bookkeeping over three
// hours of minutes, each with new ads, as a live job would see them: the
// minutes and windows it holds must stay bounded by the longest window plus
// the lateness horizon, whatever the uptime. (Nothing in the streaming state
// may grow with uptime.)
func TestTopStageStateIsBounded(t *testing.T) {
	horizon := 5*time.Minute + 2*stateMargin
	f := newTopStreamFn([]int{1, 5, 15, 60}, 100, horizon, time.Second)
	acc := newTopAcc()
	t0 := int64(1_700_000_040) // a minute start, Unix s
	var emitted int
	emit := func(result.Record) { emitted++ }
	maxMinutes, maxWindows := 0, 0
	for i := int64(0); i < 180; i++ {
		m := t0 + i*60
		ads := map[string]int64{}
		for a := range 50 {
			ads[fmt.Sprintf("ad-%d-%d", i, a)] = int64(a + 1) // every minute brings new ads
		}
		acc.apply(MinuteSnapshot{Minute: m, Ads: ads})
		now := (m+60)*1000 + 5_000 // the watermark, just past the minute
		f.tick(acc, emit)
		f.forget(acc, now)
		if i >= 70 {
			maxMinutes, maxWindows = max(maxMinutes, len(acc.minutes)), max(maxWindows, len(acc.emitted))
		}
	}
	// Minutes: the longest window plus the lateness horizon (in minutes) and
	// a little; windows: each size's open ends plus its early ones.
	wantMinutes := 60 + int(horizon/time.Minute) + 3
	wantWindows := 0
	for _, w := range f.Sizes {
		wantWindows += w + int(horizon/time.Minute) + 3
	}
	if acc.ads.live() > 50*wantMinutes || len(acc.ads.names) > 50*wantMinutes {
		t.Errorf("the stage's ad table holds %d ads in %d slots; the minutes held have at most %d", acc.ads.live(), len(acc.ads.names), 50*wantMinutes)
	}
	if maxMinutes > wantMinutes || maxWindows > wantWindows {
		t.Errorf("after 70 minutes the stage held up to %d minutes and %d windows; want at most %d and %d",
			maxMinutes, maxWindows, wantMinutes, wantWindows)
	}
	if emitted == 0 {
		t.Fatal("no top list emitted")
	}
	if acc.cutoff == 0 || !slices.ContainsFunc(keys(acc.minutes), func(m int64) bool { return m == t0+179*60 }) {
		t.Errorf("cutoff %d, newest minute kept: %v", acc.cutoff, slices.Max(keys(acc.minutes)))
	}
}

// TestTopStageEmitsAFinalWindowOnce: once a window is final and dropped, a
// later tick neither recomputes nor emits it again. It did: forget kept the
// last final window in the range tick walks, so every tick summed that
// window's minutes in full (60 of them for the 60-minute list, every ad of
// each) and re-sent the same list.
func TestTopStageEmitsAFinalWindowOnce(t *testing.T) {
	horizon := 5*time.Minute + 2*stateMargin
	f := newTopStreamFn([]int{1, 5, 15, 60}, 100, horizon, time.Second)
	acc := newTopAcc()
	t0 := int64(1_700_000_040)
	sent := map[winKey]int{}
	final := map[winKey]bool{}
	emit := func(r result.Record) {
		k := winKey{r.Top.WindowSize, r.Top.Minute}
		if final[k] {
			t.Fatalf("window %+v emitted again after it was final", k)
		}
		sent[k]++
	}
	for i := int64(0); i < 90; i++ {
		m := t0 + i*60
		acc.apply(MinuteSnapshot{Minute: m, Ads: map[string]int64{"a": i + 1, fmt.Sprint("b", i): 1}})
		// Several ticks a minute, as the job's timer fires while clicks flow.
		for s := int64(5); s < 60; s += 20 {
			now := (m+s)*1000 + 5_000
			f.tick(acc, emit)
			f.forget(acc, now)
			for k := range sent {
				if (k.last+60)*1000+f.HorizonMS <= now {
					final[k] = true
				}
			}
		}
	}
	if len(final) < 4*60 {
		t.Fatalf("only %d windows became final", len(final))
	}
}

// TestTopStageUpdatesEqualFullSums: after every tick, each window's list
// the stage holds equals the top-n of its minutes summed in full — with a
// small n, so that lists are full and updateTops skips most changed ads by
// their totals, and with counts growing in random minutes and ads (some
// hot, most with a click or two, as at high cardinality), while the
// watermark drops final windows and old minutes.
func TestTopStageUpdatesEqualFullSums(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		n := 1 + rng.IntN(4)
		f := newTopStreamFn([]int{1, 2, 5}, n, 3*time.Minute, time.Second)
		acc := newTopAcc()
		t0 := int64(1_700_000_040)
		counts := map[int64]map[string]int64{}
		for step := 0; step < 120; step++ {
			m := t0 + int64(step/10+rng.IntN(3))*60
			if counts[m] == nil {
				counts[m] = map[string]int64{}
			}
			snap := map[string]int64{}
			for range 1 + rng.IntN(6) {
				ad := fmt.Sprintf("ad%d", rng.IntN(40))
				if rng.IntN(4) == 0 {
					ad = fmt.Sprintf("hot%d", rng.IntN(3))
				}
				counts[m][ad] += int64(1 + rng.IntN(3))
				snap[ad] = counts[m][ad]
			}
			acc.apply(MinuteSnapshot{Minute: m, Ads: snap})
			f.tick(acc, func(result.Record) {})
			f.forget(acc, (t0+int64(step/10)*60)*1000) // minutes drop, totals with them
			for k, got := range acc.emitted {
				window := map[int64]map[string]int64{}
				for m := k.last - int64(k.size-1)*60; m <= k.last; m += 60 {
					window[m] = counts[m]
				}
				want := topOfSums(window, n) // from the test's own counts
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d n %d window %+v: held %v, full sums %v", seed, step, n, k, got, want)
				}
			}
		}
	}
}

// TestTopStageBytesPerEntry: the top stage holds every ad's count in every
// minute of the longest window plus the lateness horizon (66 minutes with
// the defaults), so its bytes per (minute, ad) decide whether the streaming
// job's memory is flat at the seed's cardinality. Keyed by the ad's string
// it held 66 bytes an entry here (the 2M-ad stream grew ~25 MB a minute
// for an hour); interned 4-byte indices take 28 and must stay under 40.
func TestTopStageBytesPerEntry(t *testing.T) {
	const minutes, perMinute, pool = 30, 20_000, 100_000
	names := make([]string, pool)
	for i := range names {
		names[i] = fmt.Sprintf("ad-%07d", i*17)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	acc := newTopAcc()
	entries := 0
	for m := range minutes {
		// Each element decodes its ads afresh, as the runner's elements do.
		ads := make(map[string]int64, perMinute)
		for k := range perMinute {
			ads[strings.Clone(names[(m*7919+k*13)%pool])] = int64(1 + k%5)
		}
		entries += len(ads)
		acc.apply(MinuteSnapshot{Minute: int64(m) * 60, Ads: ads})
	}
	clear(acc.dirty) // what the stage holds between ticks
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(entries)
	runtime.KeepAlive(acc)
	runtime.KeepAlive(names)
	t.Logf("%.0f bytes an entry (%d minutes × %d ads of %d)", perEntry, minutes, perMinute, pool)
	if perEntry > 40 {
		t.Errorf("the top state takes %.0f bytes a (minute, ad); want at most 40", perEntry)
	}
}
