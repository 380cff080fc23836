package pebblestore

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func openAt(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func read(t *testing.T, s *Store, key []byte) ([]byte, bool) {
	t.Helper()
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return slices.Clone(v), true
}

// TestMergeEqualsReadModifyWrite writes random operands for a few keys as
// separate batches, with flushes and compactions in between so that Pebble
// merges them in many groupings (memtable, L0, lower levels, partial
// compactions), and checks every read against the rule applied one write at
// a time, as the read-modify-write did: a count keeps the stored row unless
// the new one has a larger count, or an equal count and the first known
// digest; a top list is store.MergeTop(stored, new). Top lists are written
// as the streaming job's panes are: each ad's count only grows, lists only
// lengthen, and — after a "restart" — panes recomputed from part of the data.
func TestMergeEqualsReadModifyWrite(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := openAt(t, t.TempDir())
		const minute = 1_700_000_040
		type countRow struct {
			n int64
			d result.Digest
		}
		wantCount := map[string]countRow{}
		var wantTop []result.AdCount
		seenTop := false
		grow := map[string]int64{}
		listLen := 1
		for step := 0; step < 300; step++ {
			var recs []result.Record
			for i := 0; i < 1+rng.IntN(4); i++ {
				ad := []string{"a", "b", "c"}[rng.IntN(3)]
				n := int64(rng.IntN(5))
				var d result.Digest
				if rng.IntN(3) > 0 {
					d = result.DigestFromBytes([]byte{byte(rng.IntN(3)), 15: 1})
				}
				recs = append(recs, result.Record{Count: &result.Count{AdID: ad, Minute: minute, Count: n, Digest: d}})
				old, ok := wantCount[ad]
				if !ok || n > old.n || (n == old.n && d.Known && !old.d.Known) {
					wantCount[ad] = countRow{n, d}
				}
			}
			if rng.IntN(2) == 0 {
				pane := topPane(rng, grow, &listLen, step > 200)
				recs = append(recs, result.Record{Top: &result.Top{WindowSize: 5, Minute: minute, Ads: pane}})
				if seenTop {
					wantTop = store.MergeTop(wantTop, pane)
				} else {
					wantTop, seenTop = pane, true
				}
			}
			if err := s.Merge(ctx, store.LiveGeneration, recs); err != nil {
				t.Fatal(err)
			}
			switch rng.IntN(10) {
			case 0:
				if err := s.db.Flush(); err != nil {
					t.Fatal(err)
				}
			case 1:
				if err := s.db.Compact([]byte{pCount}, []byte{pTop + 1}, rng.IntN(2) == 0); err != nil {
					t.Fatal(err)
				}
			}
			for ad, want := range wantCount {
				v, ok := read(t, s, countKey(nil, store.LiveGeneration, ad, "", minute))
				n, d, valid := decodeCountValue(v)
				if !ok || !valid || n != want.n || d != want.d {
					t.Fatalf("seed %d step %d: ad %s reads (%d, %v, ok %v valid %v), want (%d, %v)", seed, step, ad, n, d, ok, valid, want.n, want.d)
				}
			}
			if seenTop {
				v, _ := read(t, s, topKey(nil, store.LiveGeneration, 5, minute))
				got, err := store.DecodeTopAds(v)
				if err != nil || !slices.Equal(got, wantTop) {
					t.Fatalf("seed %d step %d: top %v (err %v), want %v", seed, step, got, err, wantTop)
				}
			}
		}
	}
}

// topPane is the next pane of a window over ads x0..x19: a few ads' counts
// grow, the list is the first listLen of the ranking, and listLen grows. A
// recomputed pane (restart) has every count cut to part of its value.
func topPane(rng *rand.Rand, grow map[string]int64, listLen *int, recomputed bool) []result.AdCount {
	for i := 0; i < 3; i++ {
		grow[string(rune('a'+rng.IntN(20)))] += int64(1 + rng.IntN(4))
	}
	by := map[string]int64{}
	for ad, c := range grow {
		if recomputed {
			c = c * int64(rng.IntN(3)) / 2
		}
		if c > 0 {
			by[ad] = c
		}
	}
	if *listLen < 10 && rng.IntN(4) == 0 {
		*listLen++
	}
	return store.TopOf(by, *listLen)
}

// TestMergeCorruptOperand: a corrupt stored value loses to a valid one, as a
// new row replaced it before.
func TestMergeCorruptOperand(t *testing.T) {
	s := openAt(t, t.TempDir())
	ck := countKey(nil, store.LiveGeneration, "a", "", 60)
	tk := topKey(nil, store.LiveGeneration, 1, 60)
	for _, k := range [][]byte{ck, tk} {
		if err := s.db.Set(k, []byte{0xff, 0xff}, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	recs := []result.Record{
		{Count: &result.Count{AdID: "a", Minute: 60, Count: 3}},
		{Top: &result.Top{WindowSize: 1, Minute: 60, Ads: []result.AdCount{{AdID: "a", Count: 3}}}},
	}
	if err := s.Merge(context.Background(), store.LiveGeneration, recs); err != nil {
		t.Fatal(err)
	}
	v, _ := read(t, s, ck)
	if n, _, ok := decodeCountValue(v); !ok || n != 3 {
		t.Fatalf("count reads %d (valid %v), want 3", n, ok)
	}
	v, _ = read(t, s, tk)
	if ads, err := store.DecodeTopAds(v); err != nil || len(ads) != 1 || ads[0].Count != 3 {
		t.Fatalf("top reads %v (%v)", ads, err)
	}
}

// TestOpenUpgradesMerger: a database written before merger.go (Pebble's
// default merger, rows Set) opens, reads what it held and merges onto it.
func TestOpenUpgradesMerger(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck := countKey(nil, store.LiveGeneration, "a", "", 60)
	if err := db.Set(ck, appendCountValue(nil, 5, result.Digest{}), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, dir)
	recs := []result.Record{{Count: &result.Count{AdID: "a", Minute: 60, Count: 4}}}
	if err := s.Merge(context.Background(), store.LiveGeneration, recs); err != nil {
		t.Fatal(err)
	}
	n, err := s.Count(context.Background(), "a", "", 60, 120)
	if err != nil || n != 5 {
		t.Fatalf("count %d (%v), want the stored 5", n, err)
	}
	s.Close()
	// Opening again (the OPTIONS file now names merger.go's merger) works.
	s2 := openAt(t, dir)
	if n, err := s2.Count(context.Background(), "a", "", 60, 120); err != nil || n != 5 {
		t.Fatalf("reopened: count %d (%v), want 5", n, err)
	}
}

// TestCountMergerOwnsItsResult: the count merger keeps the winning
// operand's bytes in its own buffer (not on the heap per operand, since
// Pebble calls it for every count key a flush meets), so Pebble reusing an
// operand's buffer after the call must not change the result — for a
// valid winner and for a corrupt one longer than the buffer.
func TestCountMergerOwnsItsResult(t *testing.T) {
	d := result.Digest{Hi: 7, Lo: 9, Known: true}
	big, small := appendCountValue(nil, 12, d), appendCountValue(nil, 3, d)
	corrupt := slices.Repeat([]byte{0xff}, 40)
	for _, c := range []struct {
		name     string
		operands [][]byte // oldest first
		want     []byte
	}{
		{"newer wins", [][]byte{small, big}, big},
		{"older wins", [][]byte{big, small}, big},
		{"only a corrupt one", [][]byte{corrupt, corrupt}, corrupt},
	} {
		in := make([][]byte, len(c.operands))
		for i, o := range c.operands {
			in[i] = slices.Clone(o)
		}
		last := len(in) - 1
		m, err := merger.Merge(countKey(nil, store.LiveGeneration, "ad", "", 60), in[last])
		if err != nil {
			t.Fatal(err)
		}
		for i := last - 1; i >= 0; i-- {
			if err := m.MergeOlder(in[i]); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range in { // Pebble reuses its buffers
			clear(b)
		}
		got, _, err := m.Finish(true)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: Finish gave %x, %v; want %x", c.name, got, err, c.want)
		}
	}
}
