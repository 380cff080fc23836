package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func testOverwrite(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 5), fcnt("a", "country:US", b, 4), top(w, b, result.AdCount{AdID: "a", Count: 5})}))
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 3), fcnt("a", "country:US", b, 2), top(w, b, result.AdCount{AdID: "b", Count: 7}, result.AdCount{AdID: "a", Count: 3})}))
	wantCount(t, s, "a", "", b, b+60, 3)
	wantCount(t, s, "a", "country:US", b, b+60, 2)
	// Accumulating values grow: the newest write is the value, even if larger.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 11)}))
	wantCount(t, s, "a", "", b, b+60, 11)
	// Overwrite to zero.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 0)}))
	wantCount(t, s, "a", "", b, b+60, 0)
	got, err := s.Top(ctx, w, b)
	must(t, err)
	want := result.Top{WindowSize: w, Minute: b, Ads: []result.AdCount{{AdID: "b", Count: 7}, {AdID: "a", Count: 3}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Top after overwrite = %+v, want %+v", got, want)
	}
	// Same key twice in one batch: the later one wins.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("dup", b, 1), cnt("dup", b, 2)}))
	wantCount(t, s, "dup", "", b, b+60, 2)
}

func testMerge(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	ac := func(ad string, n int64) result.AdCount { return result.AdCount{AdID: ad, Count: n} }
	must(t, s.Merge(ctx, 0, []result.Record{cnt("a", b, 5), fcnt("a", "country:US", b, 4), top(w, b, ac("a", 5), ac("b", 3))}))
	// A pane recomputed from part of the data (a restarted job) lowers nothing.
	must(t, s.Merge(ctx, 0, []result.Record{cnt("a", b, 2), fcnt("a", "country:US", b, 1), top(w, b, ac("a", 2), ac("c", 1))}))
	wantCount(t, s, "a", "", b, b+60, 5)
	wantCount(t, s, "a", "country:US", b, b+60, 4)
	got, err := s.Top(ctx, w, b)
	must(t, err)
	if want := []result.AdCount{ac("a", 5), ac("b", 3)}; !reflect.DeepEqual(got.Ads, want) {
		t.Errorf("Top after a lower pane = %v, want %v", got.Ads, want)
	}
	// A later pane grows it; an ad that overtakes another displaces it.
	must(t, s.Merge(ctx, 0, []result.Record{cnt("a", b, 8), top(w, b, ac("a", 8), ac("c", 4))}))
	wantCount(t, s, "a", "", b, b+60, 8)
	got, err = s.Top(ctx, w, b)
	must(t, err)
	if want := []result.AdCount{ac("a", 8), ac("c", 4)}; !reflect.DeepEqual(got.Ads, want) {
		t.Errorf("Top after a higher pane = %v, want %v", got.Ads, want)
	}
	// Within one call, in any order, the larger wins.
	must(t, s.Merge(ctx, 0, []result.Record{cnt("m", b, 7), cnt("m", b, 3), top(w, b+60, ac("x", 3)), top(w, b+60, ac("x", 1), ac("y", 1))}))
	wantCount(t, s, "m", "", b, b+60, 7)
	got, err = s.Top(ctx, w, b+60)
	must(t, err)
	if want := []result.AdCount{ac("x", 3), ac("y", 1)}; !reflect.DeepEqual(got.Ads, want) {
		t.Errorf("Top merged within one call = %v, want %v", got.Ads, want)
	}
}

func testCountRange(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	// Minutes from 23:50 to 00:10 across the day (and hour) boundary, count 1<<i.
	start := b + 86400 - 10*60
	var recs []result.Record
	for i := int64(0); i < 20; i++ {
		recs = append(recs, cnt("ad-range", start+i*60, 1<<i))
	}
	must(t, s.Upsert(ctx, 0, recs))
	sum := func(i, j int64) int64 { // minutes i..j-1
		var n int64
		for k := i; k < j; k++ {
			n += 1 << k
		}
		return n
	}
	m := func(i int64) int64 { return start + i*60 }
	wantCount(t, s, "ad-range", "", m(0), m(20), sum(0, 20))
	wantCount(t, s, "ad-range", "", m(2), m(5), sum(2, 5))       // half-open: minute 5 excluded
	wantCount(t, s, "ad-range", "", m(9), m(11), sum(9, 11))     // across midnight
	wantCount(t, s, "ad-range", "", m(10), m(11), sum(10, 11))   // exactly one minute
	wantCount(t, s, "ad-range", "", m(7), m(7), 0)               // empty range
	wantCount(t, s, "ad-range", "", m(-30), m(50), sum(0, 20))   // wider than the data
	wantCount(t, s, "ad-range", "", m(20), m(40), 0)             // after the data
	wantCount(t, s, "other", "", m(0), m(20), 0)                 // unknown ad
	wantCount(t, s, "ad-range", "country:US", m(0), m(20), 0)    // no filtered rows
	wantCount(t, s, "ad-range", "", m(19), m(19)+86400*3, 1<<19) // a long range
}

func testCountInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	for name, r := range map[string][2]int64{
		"unaligned from": {b + 1, b + 60},
		"unaligned to":   {b, b + 61},
		"from after to":  {b + 120, b + 60},
	} {
		_, err := s.Count(ctx, "ad", "", r[0], r[1])
		wantErr(t, err, store.ErrInvalid, "Count "+name)
		wantErr(t, s.ScanCounts(ctx, r[0], r[1], func(result.Record) error { return nil }), store.ErrInvalid, "ScanCounts "+name)
	}
	_, err := s.Count(ctx, "", "", b, b+60)
	wantErr(t, err, store.ErrInvalid, "Count empty ad id")
	_, err = s.Top(ctx, 0, b)
	wantErr(t, err, store.ErrInvalid, "Top window 0")
	_, err = s.Top(ctx, 5, b+30)
	wantErr(t, err, store.ErrInvalid, "Top unaligned minute")
	_, err = s.LatestTopMinute(ctx, -1)
	wantErr(t, err, store.ErrInvalid, "LatestTopMinute window -1")
}

func testFiltered(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	must(t, s.Upsert(ctx, 0, []result.Record{
		cnt("ad", b, 10), cnt("ad", b+60, 20),
		fcnt("ad", "country:US", b, 3), fcnt("ad", "country:US", b+60, 4),
		fcnt("ad", "country:DE", b, 5), fcnt("ad", "device:ios", b+60, 6),
		fcnt("ad2", "country:US", b, 100),
	}))
	wantCount(t, s, "ad", "", b, b+120, 30)
	wantCount(t, s, "ad", "country:US", b, b+120, 7)
	wantCount(t, s, "ad", "country:DE", b, b+120, 5)
	wantCount(t, s, "ad", "device:ios", b, b+120, 6)
	wantCount(t, s, "ad", "device:android", b, b+120, 0)
	wantCount(t, s, "ad", "country:U", b, b+120, 0) // no prefix matching
	wantCount(t, s, "ad2", "", b, b+120, 0)
	wantCount(t, s, "ad2", "country:US", b, b+120, 100)
}

func testUpsertInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	good := cnt("ad", b, 1)
	for name, r := range map[string]result.Record{
		"empty record":       {},
		"two kinds":          {Count: &result.Count{AdID: "x", Minute: b, Count: 1}, Top: &result.Top{WindowSize: 1, Minute: b}},
		"unaligned minute":   cnt("ad", b+1, 1),
		"negative count":     cnt("ad", b, -1),
		"empty ad":           cnt("", b, 1),
		"empty filter":       fcnt("ad", "", b, 1),
		"window 0":           top(0, b),
		"top empty ad":       top(1, b, result.AdCount{Count: 1}),
		"top unaligned":      top(1, b+5),
		"filtered unaligned": fcnt("ad", "country:US", b-30, 1),
	} {
		wantErr(t, s.Upsert(ctx, 0, []result.Record{good, r}), store.ErrInvalid, "Upsert "+name)
	}
	wantCount(t, s, "ad", "", b, b+60, 0) // the valid record of a rejected batch is not written
	wantErr(t, s.Upsert(ctx, -1, []result.Record{good}), store.ErrInvalid, "Upsert generation -1")
	must(t, s.Upsert(ctx, 0, nil))
}

func testConcurrentWriters(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	const writers, ads, minutes = 8, 10, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Each writer owns its ads and also writes shared keys; the
			// shared keys' final round (below) decides them.
			for round := 0; round < 5; round++ {
				var recs []result.Record
				for a := 0; a < ads; a++ {
					for m := 0; m < minutes; m++ {
						recs = append(recs, cnt(fmt.Sprintf("w%d-ad%d", w, a), b+int64(m)*60, int64(round*100+w)))
						recs = append(recs, cnt("shared", b+int64(m)*60, int64(round)))
					}
				}
				if err := s.Upsert(ctx, 0, recs); err != nil {
					errs <- err
					return
				}
			}
			var clicks []click.Click
			for i := 0; i < 200; i++ {
				clicks = append(clicks, click.Click{EventID: fmt.Sprintf("e%d", i%150), AdID: "cw", Time: b*1000 + int64(i%150)})
			}
			errs <- s.WriteRaw(ctx, clicks) // all writers write the same 150 clicks
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for w := 0; w < writers; w++ {
		for a := 0; a < ads; a++ {
			wantCount(t, s, fmt.Sprintf("w%d-ad%d", w, a), "", b, b+minutes*60, int64(minutes*(400+w)))
		}
	}
	wantCount(t, s, "shared", "", b, b+minutes*60, minutes*4)
	if seen := readAll(t, s, sec(b), sec(b+60), 3); len(seen) != 150 {
		t.Errorf("concurrent raw writers: read %d clicks, want 150", len(seen))
	}
}

func testLargeRange(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base() + 30*60 // not hour-aligned: spans two hours
	const ads, minutes = 100, 60
	var recs []result.Record
	want := map[string]int64{}
	for a := 0; a < ads; a++ {
		id := fmt.Sprintf("large-%03d", a)
		for m := 0; m < minutes; m++ {
			recs = append(recs, cnt(id, b+int64(m)*60, int64(a+m)), fcnt(id, "device:tv", b+int64(m)*60, int64(a)))
			want[id] += int64(a + m)
		}
	}
	for i := 0; i < len(recs); i += 1000 {
		must(t, s.Upsert(ctx, 0, recs[i:min(i+1000, len(recs))]))
	}
	for a := 0; a < ads; a++ {
		id := fmt.Sprintf("large-%03d", a)
		wantCount(t, s, id, "", b, b+minutes*60, want[id])
		wantCount(t, s, id, "device:tv", b, b+minutes*60, int64(a*minutes))
	}
	n := 0
	must(t, s.ScanCounts(ctx, b, b+minutes*60, func(result.Record) error { n++; return nil }))
	if n != len(recs) {
		t.Errorf("ScanCounts over the large range returned %d records, want %d", n, len(recs))
	}
}

func testTop(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w, w2 := sp.win(), sp.win()
	_, err := s.Top(ctx, w, b)
	wantErr(t, err, store.ErrNotFound, "Top before any write")
	_, err = s.LatestTopMinute(ctx, w)
	wantErr(t, err, store.ErrNotFound, "LatestTopMinute before any write")
	ads := []result.AdCount{{AdID: "z", Count: 9}, {AdID: "a", Count: 5}, {AdID: "b", Count: 5}}
	must(t, s.Upsert(ctx, 0, []result.Record{top(w, b+120, ads...), top(w, b, ads[:1]...), top(w, b+60), top(w2, b+600, ads...)}))
	got, err := s.Top(ctx, w, b+120)
	must(t, err)
	if want := (result.Top{WindowSize: w, Minute: b + 120, Ads: ads}); !reflect.DeepEqual(got, want) {
		t.Errorf("Top = %+v, want %+v (order kept)", got, want)
	}
	got, err = s.Top(ctx, w, b+60)
	must(t, err)
	if len(got.Ads) != 0 || got.WindowSize != w || got.Minute != b+60 {
		t.Errorf("empty top list = %+v", got)
	}
	_, err = s.Top(ctx, w, b+180)
	wantErr(t, err, store.ErrNotFound, "Top at a minute without a list")
	lm, err := s.LatestTopMinute(ctx, w)
	must(t, err)
	if lm != b+120 {
		t.Errorf("LatestTopMinute(%d) = %d, want %d", w, lm, b+120)
	}
	lm, err = s.LatestTopMinute(ctx, w2)
	must(t, err)
	if lm != b+600 {
		t.Errorf("LatestTopMinute(%d) = %d, want %d", w2, lm, b+600)
	}
	// A later minute moves it; an earlier one does not.
	must(t, s.Upsert(ctx, 0, []result.Record{top(w, b+3600*5, ads...), top(w, b-3600)}))
	if lm, _ = s.LatestTopMinute(ctx, w); lm != b+3600*5 {
		t.Errorf("LatestTopMinute after a later write = %d, want %d", lm, b+3600*5)
	}
}

func testScanCounts(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	recs := []result.Record{
		cnt("a", b-60, 1),                 // before: out
		cnt("a", b, 2), cnt("b", b+60, 3), // in
		fcnt("a", "country:US", b+120, 4), // in
		cnt("a", b+3600, 5),               // next hour: in
		cnt("a", b+7200, 6),               // end: out
		top(sp.win(), b, result.AdCount{AdID: "a", Count: 2}),
	}
	must(t, s.Upsert(ctx, 0, recs))
	var got []string
	must(t, s.ScanCounts(ctx, b, b+7200, func(r result.Record) error {
		got = append(got, r.Key()+fmt.Sprintf("=%d", recCount(r)))
		return nil
	}))
	sort.Strings(got)
	var want []string
	for _, r := range recs[1:5] {
		want = append(want, r.Key()+fmt.Sprintf("=%d", recCount(r)))
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ScanCounts = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	err := s.ScanCounts(ctx, b, b+7200, func(result.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("ScanCounts did not stop at fn's error: err=%v after %d calls", err, n)
	}
	must(t, s.ScanCounts(ctx, b, b, func(result.Record) error { t.Error("empty range called fn"); return nil }))
}

func recCount(r result.Record) int64 {
	if r.Count != nil {
		return r.Count.Count
	}
	return r.Filtered.Count
}
