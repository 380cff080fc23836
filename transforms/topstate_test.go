package transforms

import (
	"fmt"
	"slices"
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
