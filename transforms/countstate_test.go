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
// 200k ads with 1–2 clicks each must take at most 300 (181 measured).
func TestCountStateBytesPerClick(t *testing.T) {
	const ads = 200_000
	p := MinutePartial{Minute: 60}
	clicks := 0
	for i := range ads {
		var b partialBuilder
		for k := range 1 + i%2 {
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
	perClick := float64(after.HeapAlloc-before.HeapAlloc) / float64(clicks)
	runtime.KeepAlive(acc)
	runtime.KeepAlive(p)
	t.Logf("%.0f bytes a click (%d ads, %d clicks)", perClick, ads, clicks)
	if perClick > 300 {
		t.Errorf("the count state takes %.0f bytes a click; want at most 300", perClick)
	}
}
