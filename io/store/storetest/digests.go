package storetest

import (
	"testing"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func dg(hi, lo uint64) result.Digest { return result.Digest{Hi: hi, Lo: lo, Known: true} }

func dcnt(ad string, m, c int64, d result.Digest) result.Record {
	return result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: c, Digest: d}}
}

func dfcnt(ad, f string, m, c int64, d result.Digest) result.Record {
	return result.Record{Filtered: &result.FilteredCount{AdID: ad, FilterID: f, Minute: m, Count: c, Digest: d}}
}

// wantDigest checks CountDigest over [from, to).
func wantDigest(t *testing.T, s store.Store, ad, f string, from, to, n int64, d result.Digest) {
	t.Helper()
	cd, ok := s.(store.CountDigester)
	if !ok {
		t.Fatalf("%T does not implement store.CountDigester", s)
	}
	gn, gd, err := cd.CountDigest(ctxT(t), ad, f, from, to)
	if err != nil {
		t.Fatalf("CountDigest(%q, %q): %v", ad, f, err)
	}
	if gn != n || gd != d {
		t.Errorf("CountDigest(%q, %q, %d, %d) = %d, %v; want %d, %v", ad, f, from, to, gn, gd, n, d)
	}
}

// scanDigests is every digest ScanCounts returns for [from, to), by key.
func scanDigests(t *testing.T, s store.Store, from, to int64) map[string]result.Digest {
	t.Helper()
	out := map[string]result.Digest{}
	must(t, s.ScanCounts(ctxT(t), from, to, func(r result.Record) error {
		if r.Count != nil {
			out[r.Key()] = r.Count.Digest
		} else {
			out[r.Key()] = r.Filtered.Digest
		}
		return nil
	}))
	return out
}

// testDigests: a digest is stored and returned with its count (ScanCounts
// and CountDigest, which sums the minutes'), goes with the count that wins a
// merge, and a count written without one reads back as unknown — never as
// the empty set's digest.
func testDigests(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	d1, d2 := dg(1<<63, 5), dg(1<<63|7, ^uint64(0)) // their sum carries out of both halves
	recs := []result.Record{dcnt("d", b, 3, d1), dcnt("d", b+60, 4, d2), dfcnt("d", "country:US", b, 2, d2), cnt("old", b, 9)}
	must(t, s.Upsert(ctx, 0, recs))
	got := scanDigests(t, s, b, b+120)
	for _, r := range recs {
		want := result.Digest{}
		switch {
		case r.Count != nil:
			want = r.Count.Digest
		default:
			want = r.Filtered.Digest
		}
		if g, ok := got[r.Key()]; !ok || g != want {
			t.Errorf("ScanCounts digest of %s = %v, want %v", r.Key(), g, want)
		}
	}
	wantDigest(t, s, "d", "", b, b+120, 7, d1.Add(d2))
	wantDigest(t, s, "d", "", b+60, b+120, 4, d2)
	wantDigest(t, s, "d", "country:US", b, b+120, 2, d2)
	wantDigest(t, s, "d", "", b+120, b+180, 0, result.Digest{Known: true}) // no minutes: the empty set
	wantDigest(t, s, "old", "", b, b+60, 9, result.Digest{})               // written without: unknown
	// Overwrite: the new digest replaces the old one.
	must(t, s.Upsert(ctx, 0, []result.Record{dcnt("d", b, 3, d2)}))
	wantDigest(t, s, "d", "", b, b+60, 3, d2)

	// Merge (its own generation of rows: a new ad): the larger count keeps
	// its digest whatever the order; a larger count without one leaves the
	// digest unknown, not the smaller count's.
	must(t, s.Merge(ctx, 0, []result.Record{dcnt("mg", b, 5, d1), dcnt("mg", b+60, 5, d1)}))
	must(t, s.Merge(ctx, 0, []result.Record{dcnt("mg", b, 2, d2), dcnt("mg", b+60, 6, d2)}))
	wantDigest(t, s, "mg", "", b, b+60, 5, d1)
	wantDigest(t, s, "mg", "", b+60, b+120, 6, d2)
	must(t, s.Merge(ctx, 0, []result.Record{cnt("mg", b, 8)}))
	wantDigest(t, s, "mg", "", b, b+60, 8, result.Digest{})
	wantDigest(t, s, "mg", "", b, b+120, 14, result.Digest{}) // one unknown minute: the sum is unknown
}
