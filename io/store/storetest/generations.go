package storetest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func testGenerations(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	// Live data for minutes 0..9.
	var live []result.Record
	for i := int64(0); i < 10; i++ {
		live = append(live, cnt("ad", b+i*60, 1), fcnt("ad", "country:US", b+i*60, 1), top(w, b+i*60, result.AdCount{AdID: "ad", Count: 1}))
	}
	must(t, s.Upsert(ctx, 0, live))
	// Recalculate minutes [3, 7): values 10, minute 5 has no row at all.
	g, err := s.NewGeneration(ctx, b+3*60, b+7*60, b+7*60)
	must(t, err)
	if g <= store.LiveGeneration {
		t.Fatalf("NewGeneration returned %d", g)
	}
	var recalc []result.Record
	for i := int64(3); i < 7; i++ {
		if i == 5 {
			continue
		}
		recalc = append(recalc, cnt("ad", b+i*60, 10), fcnt("ad", "country:US", b+i*60, 10), top(w, b+i*60, result.AdCount{AdID: "re", Count: 10}))
	}
	recalc = append(recalc, cnt("ad", b+8*60, 1000)) // outside its range: never served
	must(t, s.Upsert(ctx, g, recalc))
	// Not committed: reads unchanged.
	wantCount(t, s, "ad", "", b, b+600, 10)
	wantCount(t, s, "ad", "country:US", b, b+600, 10)
	if tp, _ := s.Top(ctx, w, b+4*60); len(tp.Ads) != 1 || tp.Ads[0].AdID != "ad" {
		t.Errorf("uncommitted generation served a top list: %+v", tp)
	}
	must(t, s.CommitGeneration(ctx, g))
	wantSegments(t, s, b, b+600, store.Segment{From: b, To: b + 180}, store.Segment{From: b + 180, To: b + 420, Gen: g}, store.Segment{From: b + 420, To: b + 600})
	// Minutes 0-2, 7-9 live (6), 3,4,6 recalculated (30), 5 empty in gen.
	wantCount(t, s, "ad", "", b, b+600, 36)
	wantCount(t, s, "ad", "country:US", b, b+600, 36)
	wantCount(t, s, "ad", "", b+5*60, b+6*60, 0)
	wantCount(t, s, "ad", "", b+8*60, b+9*60, 1)
	if tp, err := s.Top(ctx, w, b+4*60); err != nil || len(tp.Ads) != 1 || tp.Ads[0].AdID != "re" {
		t.Errorf("Top after commit = %+v, %v; want the recalculated list", tp, err)
	}
	_, err = s.Top(ctx, w, b+5*60)
	wantErr(t, err, store.ErrNotFound, "Top at a recalculated minute without a list")
	if tp, err := s.Top(ctx, w, b+9*60); err != nil || tp.Ads[0].AdID != "ad" {
		t.Errorf("Top outside the generation = %+v, %v", tp, err)
	}
	lm, err := s.LatestTopMinute(ctx, w)
	must(t, err)
	if lm != b+9*60 {
		t.Errorf("LatestTopMinute = %d, want %d", lm, b+9*60)
	}
	// ScanCounts serves the switched values.
	var scanned int64
	must(t, s.ScanCounts(ctx, b, b+600, func(r result.Record) error { scanned += recCount(r); return nil }))
	if scanned != 72 {
		t.Errorf("ScanCounts total = %d, want 72", scanned)
	}
	must(t, s.CommitGeneration(ctx, g)) // idempotent
	wantCount(t, s, "ad", "", b, b+600, 36)
	// Writing the committed generation after the commit is visible.
	must(t, s.Upsert(ctx, g, []result.Record{cnt("ad", b+5*60, 7)}))
	wantCount(t, s, "ad", "", b, b+600, 43)
	// A later generation over [6, 10) wins over both where they overlap, and
	// its latest top minute counts even if live has one later in its range.
	g2, err := s.NewGeneration(ctx, b+6*60, b+10*60, b+10*60)
	must(t, err)
	if g2 == g {
		t.Fatal("NewGeneration returned the same generation twice")
	}
	must(t, s.Upsert(ctx, g2, []result.Record{cnt("ad", b+6*60, 100), top(w, b+7*60, result.AdCount{AdID: "g2", Count: 1})}))
	must(t, s.CommitGeneration(ctx, g2))
	// 0-2 live 3, 3-4 g 20, 5 g 7, 6 g2 100, 7-9 g2 0
	wantCount(t, s, "ad", "", b, b+600, 130)
	if lm, err = s.LatestTopMinute(ctx, w); err != nil || lm != b+7*60 {
		t.Errorf("LatestTopMinute with the later generation = %d, %v; want %d", lm, err, b+7*60)
	}
	// Live writes into a switched range are not served; outside they are.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("ad", b+4*60, 500), cnt("ad", b+11*60, 2)}))
	wantCount(t, s, "ad", "", b, b+720, 132)
}

// testGenerationTops: a generation whose top lists reach past its counts
// (a replay rewrites every window that sums a replayed minute) serves its
// counts only in [from, to) and its top lists in [from, topTo); one commit
// switches both.
func testGenerationTops(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	var live []result.Record
	for i := int64(0); i < 12; i++ {
		live = append(live, cnt("ad", b+i*60, 1), top(w, b+i*60, result.AdCount{AdID: "ad", Count: 1}))
	}
	must(t, s.Upsert(ctx, 0, live))
	g, err := s.NewGeneration(ctx, b+3*60, b+5*60, b+9*60)
	must(t, err)
	var recalc []result.Record
	for i := int64(3); i < 9; i++ {
		recalc = append(recalc, top(w, b+i*60, result.AdCount{AdID: "re", Count: 10}))
		// A count after to is never served from g, even if written.
		recalc = append(recalc, cnt("ad", b+i*60, 10))
	}
	recalc = append(recalc, top(w, b+9*60, result.AdCount{AdID: "re", Count: 10})) // after topTo: never served
	must(t, s.Upsert(ctx, g, recalc))
	if tp, err := s.Top(ctx, w, b+6*60); err != nil || tp.Ads[0].AdID != "ad" {
		t.Errorf("Top after to before the commit = %+v, %v; want the live list", tp, err)
	}
	must(t, s.CommitGeneration(ctx, g))
	// Counts: minutes 3-4 from g (20), the other 10 minutes live.
	wantCount(t, s, "ad", "", b, b+720, 30)
	wantCount(t, s, "ad", "", b+5*60, b+9*60, 4)
	for i := int64(0); i < 12; i++ {
		want := "ad"
		if i >= 3 && i < 9 {
			want = "re"
		}
		if tp, err := s.Top(ctx, w, b+i*60); err != nil || len(tp.Ads) != 1 || tp.Ads[0].AdID != want {
			t.Errorf("Top at minute %d = %+v, %v; want %s's list", i, tp, err, want)
		}
	}
	var scanned int64
	must(t, s.ScanCounts(ctx, b, b+720, func(r result.Record) error { scanned += recCount(r); return nil }))
	if scanned != 30 {
		t.Errorf("ScanCounts total = %d, want 30", scanned)
	}
	if lm, err := s.LatestTopMinute(ctx, w); err != nil || lm != b+11*60 {
		t.Errorf("LatestTopMinute = %d, %v; want the live %d", lm, err, b+11*60)
	}
	// Live writes after to: counts are served, top lists up to topTo are not.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("ad", b+6*60, 5), top(w, b+7*60, result.AdCount{AdID: "late", Count: 1})}))
	wantCount(t, s, "ad", "", b+6*60, b+7*60, 5)
	if tp, err := s.Top(ctx, w, b+7*60); err != nil || tp.Ads[0].AdID != "re" {
		t.Errorf("Top at minute 7 after a live write = %+v, %v; want g's list", tp, err)
	}
	// A generation whose top lists reach past every live list serves the
	// latest one, and only within its top range.
	w2 := sp.win()
	must(t, s.Upsert(ctx, 0, []result.Record{top(w2, b+20*60, result.AdCount{AdID: "ad", Count: 1})}))
	g2, err := s.NewGeneration(ctx, b+18*60, b+21*60, b+30*60)
	must(t, err)
	must(t, s.Upsert(ctx, g2, []result.Record{top(w2, b+25*60, result.AdCount{AdID: "re", Count: 1}), top(w2, b+30*60, result.AdCount{AdID: "re", Count: 1})}))
	must(t, s.CommitGeneration(ctx, g2))
	if lm, err := s.LatestTopMinute(ctx, w2); err != nil || lm != b+25*60 {
		t.Errorf("LatestTopMinute = %d, %v; want %d, the latest list in the generation's top range", lm, err, b+25*60)
	}
}

func testGenerationInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	_, err := s.NewGeneration(ctx, b, b, b)
	wantErr(t, err, store.ErrInvalid, "NewGeneration empty range")
	_, err = s.NewGeneration(ctx, b+60, b, b+60)
	wantErr(t, err, store.ErrInvalid, "NewGeneration reversed range")
	_, err = s.NewGeneration(ctx, b+1, b+60, b+60)
	wantErr(t, err, store.ErrInvalid, "NewGeneration unaligned")
	_, err = s.NewGeneration(ctx, b, b+120, b+60)
	wantErr(t, err, store.ErrInvalid, "NewGeneration with top lists ending before the counts")
	_, err = s.NewGeneration(ctx, b, b+60, b+90)
	wantErr(t, err, store.ErrInvalid, "NewGeneration with an unaligned end of top lists")
	wantErr(t, s.CommitGeneration(ctx, store.LiveGeneration), store.ErrInvalid, "CommitGeneration(live)")
	wantErr(t, s.CommitGeneration(ctx, 1<<60), store.ErrNotFound, "CommitGeneration(unknown)")
	wantErr(t, s.Upsert(ctx, 1<<60, []result.Record{cnt("ad", b, 1)}), store.ErrInvalid, "Upsert to an unreserved generation")
}

func testGenerationSwitch(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	const ads, minutes = 5, 60
	var old, neu []result.Record
	for a := 0; a < ads; a++ {
		for m := int64(0); m < minutes; m++ {
			old = append(old, cnt(fmt.Sprint("sw", a), b+m*60, 1))
			neu = append(neu, cnt(fmt.Sprint("sw", a), b+m*60, 2))
		}
	}
	must(t, s.Upsert(ctx, 0, old))
	g, err := s.NewGeneration(ctx, b, b+minutes*60, b+minutes*60)
	must(t, err)
	must(t, s.Upsert(ctx, g, neu))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	errs := make(chan error, 4)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			ad := fmt.Sprint("sw", r%ads)
			sawNew := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := s.Count(ctx, ad, "", b, b+minutes*60)
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
				switch {
				case n == minutes:
					if sawNew {
						bad.Add(1) // went back to old values
					}
				case n == 2*minutes:
					sawNew = true
				default:
					bad.Add(1) // a mix
				}
			}
		}(r)
	}
	time.Sleep(100 * time.Millisecond)
	must(t, s.CommitGeneration(ctx, g))
	// The committing process sees the switch at once.
	for a := 0; a < ads; a++ {
		wantCount(t, s, fmt.Sprint("sw", a), "", b, b+minutes*60, 2*minutes)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if bad.Load() > 0 {
		t.Errorf("%d of %d concurrent reads saw a mix of generations or went back", bad.Load(), reads.Load())
	}
	if reads.Load() < 4 {
		t.Errorf("only %d concurrent reads ran", reads.Load())
	}
}

// wantSegments checks CountSegments over [from, to).
func wantSegments(t *testing.T, s store.Store, from, to int64, want ...store.Segment) {
	t.Helper()
	cs, ok := s.(store.CountSegmenter)
	if !ok {
		t.Fatalf("%T does not implement store.CountSegmenter", s)
	}
	got, err := cs.CountSegments(ctxT(t), from, to)
	if err != nil {
		t.Fatalf("CountSegments(%d, %d): %v", from, to, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("CountSegments(%d, %d) = %+v; want %+v", from, to, got, want)
	}
}
