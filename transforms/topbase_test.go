package transforms

import (
	"reflect"
	"testing"
)

func TestTopBaseCoderRoundTrip(t *testing.T) {
	in := TopBase{
		Ads: []string{"ad-1", "", "日本\x00", "b"},
		Minutes: []TopMinute{
			{Minute: 1704103260, Ads: []uint32{0, 3}, Counts: []uint32{7, maxTopCount}},
			{Minute: -60, Ads: []uint32{2}, Counts: []uint32{1}},
			{Minute: 0, Ads: []uint32{}, Counts: []uint32{}},
		},
	}
	b, err := encodeTopBase(in)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeTopBase(b)
	if err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip %+v -> %+v (%v)", in, back, err)
	}
	for cut := 0; cut < len(b); cut++ {
		if _, err := decodeTopBase(b[:cut]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", cut, len(b))
		}
	}
	// An ad index outside the table, and bytes after the end.
	bad := TopBase{Ads: []string{"a"}, Minutes: []TopMinute{{Minute: 60, Ads: []uint32{1}, Counts: []uint32{1}}}}
	if b, _ := encodeTopBase(bad); b != nil {
		if _, err := decodeTopBase(b); err == nil {
			t.Fatal("an index outside the ad table decoded")
		}
	}
	if _, err := decodeTopBase(append(b, 0)); err == nil {
		t.Fatal("trailing bytes decoded")
	}
}

// TestTopAccRestoresItsBase: a compaction's base, encoded and decoded,
// rebuilds the same minutes, totals and free indices, and the restored acc
// goes on interning into the freed slots.
func TestTopAccRestoresItsBase(t *testing.T) {
	acc := newTopAcc()
	acc.apply(MinuteSnapshot{Minute: 60, Ads: map[string]int64{"a": 3, "b": 1}})
	acc.apply(MinuteSnapshot{Minute: 120, Ads: map[string]int64{"c": 2, "a": 1}})
	for i, c := range acc.minutes[60] { // drop minute 60, as forget does
		acc.ads.add(i, -int64(c))
	}
	delete(acc.minutes, 60)
	base, n := acc.base()
	if n != 2 {
		t.Fatalf("base has %d entries, want 2", n)
	}
	b, err := encodeTopBase(base)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := decodeTopBase(b)
	if err != nil {
		t.Fatal(err)
	}
	back := newTopAcc()
	back.restore(dec)
	if !reflect.DeepEqual(back.minutes, acc.minutes) || !reflect.DeepEqual(back.ads.totals, acc.ads.totals) ||
		!reflect.DeepEqual(back.ads.idx, acc.ads.idx) || back.ads.live() != 2 || len(back.ads.free) != 1 {
		t.Fatalf("restored %+v, want %+v", back.ads, acc.ads)
	}
	if back.ads.names[back.ads.intern("d")] != "d" || len(back.ads.names) != 3 {
		t.Fatalf("a new ad did not take the free slot: %q", back.ads.names)
	}
	// A name whose ad no minute counts is a free slot; the runner's copy of
	// the base stays as it was.
	stale := TopBase{Ads: []string{"a", "gone"}, Minutes: []TopMinute{{Minute: 60, Ads: []uint32{0}, Counts: []uint32{1}}}}
	again := newTopAcc()
	again.restore(stale)
	if stale.Ads[1] != "gone" || again.ads.live() != 1 || !reflect.DeepEqual(again.ads.free, []uint32{1}) {
		t.Fatalf("restoring %+v: base now %q, table %+v", stale, stale.Ads, again.ads)
	}
}
