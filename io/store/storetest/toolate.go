package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func tooLateStore(t *testing.T, s store.Store) store.TooLateStore {
	t.Helper()
	ts, ok := s.(store.TooLateStore)
	if !ok {
		t.Fatalf("%T does not implement store.TooLateStore", s)
	}
	return ts
}

func hashes(prefix string, n int) []result.Digest {
	out := make([]result.Digest, n)
	for i := range out {
		out[i] = result.EventDigest(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func wantTooLate(t *testing.T, ts store.TooLateStore, gen store.Generation, ad string, m int64, want []result.Digest) {
	t.Helper()
	got, err := ts.TooLate(ctxT(t), gen, ad, m)
	must(t, err)
	key := func(d result.Digest) string { return d.String() }
	g, w := make([]string, len(got)), make([]string, 0, len(want))
	for i, d := range got {
		g[i] = key(d)
	}
	for _, d := range want {
		if !slices.Contains(w, key(d)) {
			w = append(w, key(d))
		}
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("too-late set of gen %d %s %s: %d hashes, want %d", gen, ad, result.FormatMinute(m), len(g), len(w))
	}
}

// testTooLate: AddTooLate is a set union per (generation, ad, minute),
// idempotent under re-delivery, isolated from other keys; bad records fail
// the whole call with ErrInvalid before anything is written; the aggregate
// writes refuse too-late records.
func testTooLate(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	ts := tooLateStore(t, s)
	m := sp.base() + 600
	a, b := hashes("a", 3), hashes("b", result.MaxTooLateHashes)
	wantTooLate(t, ts, store.LiveGeneration, "tl-ad", m, nil)
	recs := []result.TooLate{
		{AdID: "tl-ad", Minute: m, Hashes: a},
		{AdID: "tl-ad", Minute: m, Hashes: append(b[:1:1], a[0])}, // overlaps the first
		{AdID: "tl-ad", Minute: m + 60, Hashes: b},
		{AdID: "tl-ad2", Minute: m, Hashes: a[:1]},
	}
	must(t, ts.AddTooLate(ctx, store.LiveGeneration, recs))
	must(t, ts.AddTooLate(ctx, store.LiveGeneration, recs[:2])) // a re-delivery
	must(t, ts.AddTooLate(ctx, 7, []result.TooLate{{AdID: "tl-ad", Minute: m, Hashes: b[5:6]}}))
	must(t, ts.AddTooLate(ctx, store.LiveGeneration, nil))
	wantTooLate(t, ts, store.LiveGeneration, "tl-ad", m, append(append([]result.Digest{}, a...), b[0]))
	wantTooLate(t, ts, store.LiveGeneration, "tl-ad", m+60, b)
	wantTooLate(t, ts, store.LiveGeneration, "tl-ad2", m, a[:1])
	wantTooLate(t, ts, 7, "tl-ad", m, b[5:6])
	wantTooLate(t, ts, store.LiveGeneration, "tl-ad", m+120, nil)

	fresh := result.TooLate{AdID: "tl-bad", Minute: m, Hashes: a}
	for _, bad := range []struct {
		gen store.Generation
		rec result.TooLate
		why string
	}{
		{0, result.TooLate{AdID: "tl-bad", Minute: m + 1, Hashes: a}, "unaligned minute"},
		{0, result.TooLate{AdID: "tl-bad", Minute: m}, "no hashes"},
		{0, result.TooLate{AdID: "tl-bad", Minute: m, Hashes: []result.Digest{{}}}, "an unknown hash"},
		{0, result.TooLate{AdID: "tl-bad", Minute: m, Hashes: hashes("c", result.MaxTooLateHashes+1)}, "too many hashes"},
		{0, result.TooLate{AdID: "", Minute: m, Hashes: a}, "empty ad id"},
		{0, result.TooLate{AdID: strings.Repeat("x", store.MaxIDBytes+1), Minute: m, Hashes: a}, "long ad id"},
		{-1, fresh, "negative generation"},
	} {
		wantErr(t, ts.AddTooLate(ctx, bad.gen, []result.TooLate{fresh, bad.rec}), store.ErrInvalid, bad.why)
	}
	wantTooLate(t, ts, store.LiveGeneration, "tl-bad", m, nil)
	_, err := ts.TooLate(ctx, store.LiveGeneration, "tl-ad", m+1)
	wantErr(t, err, store.ErrInvalid, "reading an unaligned minute")
	_, err = ts.TooLate(ctx, store.LiveGeneration, "", m)
	wantErr(t, err, store.ErrInvalid, "reading an empty ad id")

	// Not an aggregate: Upsert and Merge refuse it, alone or beside one.
	tl := result.Record{TooLate: &fresh}
	both := cnt("tl-bad", m, 5)
	both.TooLate = &fresh
	for _, recs := range [][]result.Record{{tl}, {both}} {
		wantErr(t, s.Merge(ctx, store.LiveGeneration, recs), store.ErrInvalid, "merging a too-late record")
		wantErr(t, s.Upsert(ctx, store.LiveGeneration, recs), store.ErrInvalid, "upserting a too-late record")
	}
	wantErr(t, s.Merge(ctx, store.LiveGeneration, []result.Record{{}}), store.ErrInvalid, "merging an empty record")
	wantCount(t, s, "tl-bad", "", m, m+60, 0)
}

// testTooLateRetention: raw retention deletes the too-late rows of the
// hours it deletes the raw clicks of, and rows of minutes before the
// horizon written afterwards are not stored.
func testTooLateRetention(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	ts := tooLateStore(t, s)
	lc := lifecycleOf(t, s)
	b := sp.base()
	h := hashes("ret", 2)
	minutes := []int64{b + 10*60, b + 70*60, b + 119*60, b + 125*60, b + 150*60, b + 200*60}
	var recs []result.TooLate
	for _, m := range minutes {
		recs = append(recs, result.TooLate{AdID: "tl-ret", Minute: m, Hashes: h})
	}
	must(t, ts.AddTooLate(ctx, store.LiveGeneration, recs))
	if _, err := lc.Collect(ctx, store.Collection{RawBefore: sec(b + 135*60)}); err != nil {
		t.Fatal(err)
	}
	for i, m := range minutes {
		var want []result.Digest
		if i >= 3 { // hour 2 holds the cutoff: it stays
			want = h
		}
		wantTooLate(t, ts, store.LiveGeneration, "tl-ret", m, want)
	}
	must(t, ts.AddTooLate(ctx, store.LiveGeneration, recs[:1]))
	wantTooLate(t, ts, store.LiveGeneration, "tl-ret", minutes[0], nil)
}
