package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// gcLive writes live counts, filtered counts and top lists of two ads for
// the minutes [0, n) after b.
func gcLive(t *testing.T, s store.Store, b, n int64, w int) {
	t.Helper()
	var recs []result.Record
	for m := int64(0); m < n; m++ {
		mm := b + m*60
		recs = append(recs, cnt("gc-a", mm, 1), cnt("gc-b", mm, 2), fcnt("gc-a", "country:US", mm, 1),
			top(w, mm, result.AdCount{AdID: "gc-b", Count: 2}, result.AdCount{AdID: "gc-a", Count: 1}))
	}
	must(t, s.Upsert(ctxT(t), 0, recs))
}

// gcReplay reserves, writes and commits a generation over the minutes
// [from, to) after b (top lists too), with values that differ from live
// ones, plus a count outside its range (never served).
func gcReplay(t *testing.T, s store.Store, b, from, to int64, w int, commit bool) store.Generation {
	t.Helper()
	ctx := ctxT(t)
	g, err := s.NewGeneration(ctx, b+from*60, b+to*60, b+to*60)
	must(t, err)
	var recs []result.Record
	for m := from; m < to; m++ {
		mm := b + m*60
		recs = append(recs, cnt("gc-a", mm, 3), fcnt("gc-a", "country:US", mm, 2),
			top(w, mm, result.AdCount{AdID: "gc-a", Count: 3}))
	}
	recs = append(recs, cnt("gc-a", b+(to+5)*60, 99))
	must(t, s.Upsert(ctx, g, recs))
	if commit {
		must(t, s.CommitGeneration(ctx, g))
	}
	return g
}

func collect(t *testing.T, lc store.Lifecycle, c store.Collection) store.CollectStats {
	t.Helper()
	st, err := lc.Collect(ctxT(t), c)
	must(t, err)
	return st
}

// testGCAfterReplay: within the grace period nothing is collected; after
// it, the rows a replay replaced and the rows its generation holds outside
// its range are gone, a generation another replay replaced entirely is gone,
// and every served answer is what it was.
func testGCAfterReplay(t *testing.T, s store.Store, sp *space) {
	lc := lifecycleOf(t, s)
	b := sp.base()
	w := sp.win()
	const n = 120
	gcLive(t, s, b, n, w)
	g1 := gcReplay(t, s, b, 30, 90, w, true)
	before := served(t, s, b, n, w, "gc-a", "gc-b")
	live := rows(t, lc, 0, b, b+n*60)
	g1Rows := rows(t, lc, g1, b, b+(n+60)*60)

	collect(t, lc, store.Collection{SupersededBefore: time.Now().Add(-time.Hour)}) // within the grace period
	if got := rows(t, lc, 0, b, b+n*60); got != live {
		t.Errorf("within the grace period the live generation went from %d to %d rows", live, got)
	}
	if got := rows(t, lc, g1, b, b+(n+60)*60); got != g1Rows {
		t.Errorf("within the grace period generation %d went from %d to %d rows", g1, g1Rows, got)
	}

	collect(t, lc, store.Collection{SupersededBefore: time.Now().Add(time.Second)})
	wantServed(t, "after collecting the first replay", served(t, s, b, n, w, "gc-a", "gc-b"), before)
	if got := rows(t, lc, 0, b+30*60, b+90*60); got != 0 {
		t.Errorf("the live generation still holds %d rows the replay replaced", got)
	}
	if got, want := rows(t, lc, 0, b, b+n*60), live-60*4; got != want {
		t.Errorf("the live generation holds %d rows, want %d (those outside the replay)", got, want)
	}
	if got, want := rows(t, lc, g1, b, b+(n+60)*60), g1Rows-1; got != want {
		t.Errorf("generation %d holds %d rows, want %d (its count outside its range collected)", g1, got, want)
	}

	g2 := gcReplay(t, s, b, 30, 90, w, true) // the same values again: replaces g1 entirely
	wantServed(t, "after the second replay", served(t, s, b, n, w, "gc-a", "gc-b"), before)
	collect(t, lc, store.Collection{SupersededBefore: time.Now().Add(time.Second)})
	wantServed(t, "after collecting the second replay", served(t, s, b, n, w, "gc-a", "gc-b"), before)
	if got := rows(t, lc, g1, b, b+(n+60)*60); got != 0 {
		t.Errorf("generation %d, replaced entirely, still holds %d rows", g1, got)
	}
	if got := rows(t, lc, g2, b, b+n*60); got != 60*3 {
		t.Errorf("generation %d, serving, holds %d rows, want %d", g2, got, 60*3)
	}
}

// testGCKilledMidway: a collection stopped after its first steps has
// changed no answer; run again it converges to what one uninterrupted
// collection leaves, and an abandoned generation can no longer be committed.
func testGCKilledMidway(t *testing.T, s store.Store, sp *space) {
	lc := lifecycleOf(t, s)
	b := sp.base()
	w := sp.win()
	const n = 120
	gcLive(t, s, b, n, w)
	g1 := gcReplay(t, s, b, 20, 60, w, true)
	g2 := gcReplay(t, s, b, 40, 100, w, true)
	g3 := gcReplay(t, s, b, 0, 10, w, false) // a replay that never committed
	before := served(t, s, b, n, w, "gc-a", "gc-b")
	g1Kept := rows(t, lc, g1, b+20*60, b+40*60)
	g2Kept := rows(t, lc, g2, b+40*60, b+100*60)

	// Killed twice: after the third deletion step (the abandoned
	// generation's two are done; the first commit's are half done, so its
	// mark must not be set yet), then after the second step of the rerun.
	for i, killAt := range []int{3, 2} {
		ctx, cancel := context.WithCancel(ctxT(t))
		steps := 0
		kill := store.Collection{SupersededBefore: time.Now().Add(time.Second), AbandonedBefore: time.Now().Add(time.Second),
			Step: func() {
				if steps++; steps == killAt {
					cancel() // the process dies here
				}
			}}
		_, err := lc.Collect(ctx, kill)
		cancel()
		if err == nil {
			t.Fatalf("kill %d: a collection whose context ended midway succeeded", i+1)
		}
		wantServed(t, "after a collection killed midway", served(t, s, b, n, w, "gc-a", "gc-b"), before)
		if i == 0 && rows(t, lc, 0, b+20*60, b+100*60) == 0 {
			t.Fatal("the killed collection finished its work: it was not killed midway")
		}
	}
	wantErr(t, s.CommitGeneration(ctxT(t), g3), store.ErrNotFound, "committing an abandoned generation")

	for run := 0; run < 2; run++ { // restarted; and once more, which changes nothing
		collect(t, lc, store.Collection{SupersededBefore: time.Now().Add(time.Second), AbandonedBefore: time.Now().Add(time.Second)})
		wantServed(t, "after the restarted collection", served(t, s, b, n, w, "gc-a", "gc-b"), before)
		for _, c := range []struct {
			what     string
			gen      store.Generation
			from, to int64
			want     int64
		}{
			{"live rows the replays replaced", 0, 20, 100, 0},
			{"live rows outside the replays", 0, 0, 20, 20 * 4},
			{"generation 1's rows generation 2 replaced", g1, 40, 200, 0},
			{"generation 1's rows it serves", g1, 20, 40, g1Kept},
			{"generation 2's rows it serves", g2, 40, 100, g2Kept},
			{"generation 2's rows outside its range", g2, 100, 200, 0},
			{"the abandoned generation's rows", g3, 0, 200, 0},
		} {
			if got := rows(t, lc, c.gen, b+c.from*60, b+c.to*60); got != c.want {
				t.Errorf("run %d: %s: %d rows, want %d", run+1, c.what, got, c.want)
			}
		}
	}
}
