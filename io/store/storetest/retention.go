package storetest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// The lifecycle subtests delete everything older than their cutoffs, in
// every generation, and collect every generation committed before them, so
// they run one at a time, before the parallel ones (which start when Run
// returns and take later days).

func lifecycleOf(t *testing.T, s store.Store) store.Lifecycle {
	t.Helper()
	lc, ok := s.(store.Lifecycle)
	if !ok {
		t.Fatalf("%T does not implement store.Lifecycle", s)
	}
	return lc
}

func rows(t *testing.T, lc store.Lifecycle, gen store.Generation, from, to int64) int64 {
	t.Helper()
	n, err := lc.Rows(ctxT(t), gen, from, to)
	must(t, err)
	return n
}

// testRawRetention: raw retention deletes the whole event-time hours before
// the cutoff and keeps the hour holding it; clicks older than the horizon
// written afterwards are not stored; work reading before it is refused.
func testRawRetention(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	lc := lifecycleOf(t, s)
	b := sp.base()
	mk := func(id string, min int64) click.Click {
		return click.Click{EventID: id, AdID: "ret-ad", Time: (b+min*60)*1000 + 7, Country: "US"}
	}
	old := []click.Click{mk("h0", 10), mk("h1", 70), mk("h1-end", 119)}
	kept := []click.Click{mk("h2-early", 125), mk("h2", 150), mk("h3", 200)}
	must(t, s.WriteRaw(ctx, append(append([]click.Click{}, old...), kept...)))
	cutoff := sec(b + 135*60) // inside hour 2: the hour stays
	if _, err := lc.Collect(ctx, store.Collection{RawBefore: cutoff}); err != nil {
		t.Fatal(err)
	}
	wantClicks(t, s, b, kept)
	h, err := lc.RawHorizon(ctx)
	must(t, err)
	if !h.Equal(cutoff) {
		t.Errorf("RawHorizon = %v, want %v", h, cutoff)
	}
	// Rewriting expired clicks (a re-delivery) stores none; newer ones are.
	late := mk("h3-late", 210)
	must(t, s.WriteRaw(ctx, []click.Click{old[0], mk("h1-again", 80), late}))
	wantClicks(t, s, b, append(kept, late))
	// Idempotent.
	if _, err := lc.Collect(ctx, store.Collection{RawBefore: cutoff}); err != nil {
		t.Fatal(err)
	}
	wantClicks(t, s, b, append(kept, late))
	wantErr(t, store.CheckRawRetained(ctx, s, "a replay", sec(b+60*60)), store.ErrInvalid, "reading raw clicks before the horizon")
	must(t, store.CheckRawRetained(ctx, s, "a replay", cutoff))
}

func wantClicks(t *testing.T, s store.Store, b int64, want []click.Click) {
	t.Helper()
	seen := readAll(t, s, sec(b), sec(b+86400), 3)
	var got, exp []string
	for k := range seen {
		got = append(got, k)
	}
	for _, c := range want {
		exp = append(exp, clickKey(c))
	}
	sort.Strings(got)
	sort.Strings(exp)
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Errorf("raw clicks held:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
}

// testAggregateRetention: aggregate retention deletes every generation's
// counts and top lists of the whole UTC days before the cutoff's day, and
// keeps that day.
func testAggregateRetention(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	lc := lifecycleOf(t, s)
	b := sp.base() // a UTC day start; this test has days b and b + 1 day
	const day = 86400
	w := sp.win()
	minutes := []int64{b + 600, b + day - 60, b + day, b + day + 7200}
	var live []result.Record
	for _, m := range minutes {
		live = append(live, cnt("agr", m, 1), fcnt("agr", "device:ios", m, 1), top(w, m, result.AdCount{AdID: "agr", Count: 1}))
	}
	must(t, s.Upsert(ctx, 0, live))
	g, err := s.NewGeneration(ctx, b+day-120, b+day+60, b+day+60)
	must(t, err)
	must(t, s.Upsert(ctx, g, []result.Record{cnt("agr", b+day-60, 5), cnt("agr", b+day, 5), top(w, b+day-60, result.AdCount{AdID: "agr", Count: 5})}))
	must(t, s.CommitGeneration(ctx, g))
	if _, err := lc.Collect(ctx, store.Collection{AggregatesBefore: sec(b + day + 5*3600)}); err != nil {
		t.Fatal(err)
	}
	wantCount(t, s, "agr", "", b, b+day, 0)
	wantCount(t, s, "agr", "device:ios", b, b+day, 0)
	wantCount(t, s, "agr", "", b+day, b+2*day, 5+1)
	wantCount(t, s, "agr", "device:ios", b+day, b+2*day, 1)
	for _, m := range minutes[:2] {
		_, err := s.Top(ctx, w, m)
		wantErr(t, err, store.ErrNotFound, "Top of an expired day")
	}
	if tp, err := s.Top(ctx, w, b+day+7200); err != nil || len(tp.Ads) != 1 {
		t.Errorf("Top of the kept day = %+v, %v", tp, err)
	}
	for _, gen := range []store.Generation{0, g} {
		if n := rows(t, lc, gen, b, b+day); n != 0 {
			t.Errorf("generation %d holds %d rows of the expired day", gen, n)
		}
	}
	if n := rows(t, lc, 0, b+day, b+2*day); n != 6 {
		t.Errorf("live generation holds %d rows of the kept day, want 6", n)
	}
}

// served records every answer reads give over [b, b+minutes min) for the ads
// and window w: counts per minute and over the whole range, filtered counts,
// top lists, the latest top minute and ScanCounts.
func served(t *testing.T, s store.Store, b, minutes int64, w int, ads ...string) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	out := map[string]string{}
	for _, ad := range ads {
		for _, f := range []string{"", "country:US"} {
			out[fmt.Sprintf("count %s %s all", ad, f)] = fmt.Sprint(count(t, s, ad, f, b, b+minutes*60))
			for m := int64(0); m < minutes; m++ {
				out[fmt.Sprintf("count %s %s %d", ad, f, m)] = fmt.Sprint(count(t, s, ad, f, b+m*60, b+m*60+60))
			}
		}
	}
	for m := int64(0); m < minutes; m++ {
		tp, err := s.Top(ctx, w, b+m*60)
		if errors.Is(err, store.ErrNotFound) {
			out[fmt.Sprint("top ", m)] = "none"
			continue
		}
		must(t, err)
		out[fmt.Sprint("top ", m)] = fmt.Sprint(tp.Ads)
	}
	lm, err := s.LatestTopMinute(ctx, w)
	must(t, err)
	out["latest"] = fmt.Sprint(lm)
	var scan []string
	must(t, s.ScanCounts(ctx, b, b+minutes*60, func(r result.Record) error { scan = append(scan, r.Key()+fmt.Sprint(recCount(r))); return nil }))
	sort.Strings(scan)
	out["scan"] = strings.Join(scan, ",")
	return out
}

func wantServed(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	n := 0
	for k, v := range want {
		if got[k] != v {
			if n++; n <= 5 {
				t.Errorf("%s: %s = %s, was %s", what, k, got[k], v)
			}
		}
	}
	if n > 5 {
		t.Errorf("%s: %d answers changed in all", what, n)
	}
}
