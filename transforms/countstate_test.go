package transforms

import (
	"fmt"
	"runtime"
	"testing"
)

// TestCountStateBytesPerClick: the count stage holds every unique click of
// its open minutes, so its bytes per click bound the streaming job's memory.
// At the seed's cardinality most ads have one or two clicks in a minute. A
// map per ad and a per-ad slice indexed by the minute's attribute tuples
// held 3,794 bytes a click here (4.2 GB RSS after 150 s at 20,000 clicks/s);
// 200k ads with 1–2 clicks each must take at most 300 (157 measured).
func TestCountStateBytesPerClick(t *testing.T) {
	for _, tc := range []struct {
		ads, clicksPerAd int // clicksPerAd 0: one or two
		max              float64
	}{
		{200_000, 0, 300},
		// 1,000 ads with 1,000 clicks each: the ids dominate. Keyed by (ad,
		// event id) they took 104 bytes a click here, 76 now.
		{1_000, 1_000, 85},
	} {
		perClick := countStateBytes(tc.ads, tc.clicksPerAd)
		t.Logf("%.0f bytes a click (%d ads)", perClick, tc.ads)
		if perClick > tc.max {
			t.Errorf("%d ads: the count state takes %.0f bytes a click; want at most %.0f", tc.ads, perClick, tc.max)
		}
	}
}

func countStateBytes(ads, clicksPerAd int) float64 {
	p := MinutePartial{Minute: 60}
	clicks := 0
	for i := range ads {
		var b partialBuilder
		n := clicksPerAd
		if n == 0 {
			n = 1 + i%2
		}
		for k := range n {
			// 240 tuples in the minute, as the generator's 20 countries × 3
			// devices × 4 formats: an ad's clicks use one or two of them.
			n := i*7 + k
			b.add(idOf(fmt.Sprint("e", i, "-", k)), attrs{Country: fmt.Sprint("C", n%20), Device: fmt.Sprint("D", n/20%3), Format: fmt.Sprint("F", n/60%4)})
			clicks++
		}
		p.Ads = append(p.Ads, fmt.Sprintf("ad-%07d", i))
		p.Parts = append(p.Parts, b.build())
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	acc := newCountAcc(60)
	acc.apply(p)
	clear(acc.dirty) // what the stage holds between emissions
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(acc)
	runtime.KeepAlive(p)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(clicks)
}

// TestCountStateSameIDUnderTwoAds: an event id seen under two ads is a
// click of each (as in the batch path), and a copy with smaller attributes
// moves only its own ad's click.
func TestCountStateSameIDUnderTwoAds(t *testing.T) {
	id := idOf("e1")
	part := func(ad string, country string) MinutePartial {
		var b partialBuilder
		b.add(id, attrs{Country: country})
		return MinutePartial{Minute: 60, Ads: []string{ad}, Parts: []Partial{b.build()}}
	}
	acc := newCountAcc(60)
	for _, p := range []MinutePartial{part("a", "US"), part("b", "US"), part("b", "US"), part("b", "DE"), part("a", "US")} {
		acc.apply(p)
	}
	for ad, want := range map[string]string{"a": "US", "b": "DE"} {
		i := acc.adIdx[ad]
		if c := acc.counts(i).Count; c != 1 {
			t.Errorf("ad %s counts %d clicks, want 1", ad, c)
		}
		at, ok := acc.lookup(id, i)
		if !ok || acc.attrs[at].Country != want {
			t.Errorf("ad %s: the click has country %q (known %v), want %s", ad, acc.attrs[at].Country, ok, want)
		}
	}
}
