package transforms

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/adclick/adclick/domain/result"
)

func partialOf(ids []int, attrOf func(int) attrs) Partial {
	var b partialBuilder
	for _, i := range ids {
		b.add(idOf(fmt.Sprint("e", i)), attrOf(i))
	}
	return b.build()
}

func TestMergeIsSetUnion(t *testing.T) {
	attr := func(i int) attrs {
		return attrs{Country: []string{"US", "GB", ""}[i%3], Device: []string{"mobile", "desktop"}[i%2], Format: ""}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var a, b, c []int
		all := map[int]bool{}
		for i := 0; i < rng.IntN(50); i++ {
			for _, dst := range []*[]int{&a, &b, &c} {
				if rng.IntN(2) == 0 {
					id := rng.IntN(60)
					*dst = append(*dst, id)
					all[id] = true
				}
			}
		}
		pa, pb, pc := partialOf(a, attr), partialOf(b, attr), partialOf(c, attr)
		left := mergePartials(mergePartials(pa, pb), pc)
		right := mergePartials(pa, mergePartials(pc, pb))
		twice := mergePartials(left, right)
		for _, p := range []Partial{left, right, twice} {
			got := p.counts()
			if got.Count != int64(len(all)) {
				t.Fatalf("round %d: count %d, want %d", round, got.Count, len(all))
			}
			want := map[string]int64{}
			for id := range all {
				a := attr(id)
				if a.Country != "" {
					want["country:"+a.Country]++
				}
				want["device:"+a.Device]++
			}
			if len(got.Filters) != len(want) {
				t.Fatalf("round %d: filters %v, want %v", round, got.Filters, want)
			}
			for _, f := range got.Filters {
				if want[f.FilterID] != f.Count {
					t.Fatalf("round %d: filter %s = %d, want %d", round, f.FilterID, f.Count, want[f.FilterID])
				}
			}
		}
	}
}

func TestConflictingCopiesResolveDeterministically(t *testing.T) {
	// Two copies of one event_id with different attributes: whichever order
	// they merge in, the same (smallest) attributes win.
	x := partialOf([]int{1}, func(int) attrs { return attrs{Country: "US"} })
	y := partialOf([]int{1}, func(int) attrs { return attrs{Country: "GB"} })
	for _, p := range []Partial{mergePartials(x, y), mergePartials(y, x)} {
		got := p.counts()
		if got.Count != 1 || len(got.Filters) != 1 || got.Filters[0].FilterID != "country:GB" {
			t.Fatalf("got %+v, want one click in country:GB", got)
		}
	}
}

func TestPartialCoderRoundTrip(t *testing.T) {
	p := partialOf([]int{5, 3, 9, 3}, func(i int) attrs { return attrs{Country: fmt.Sprint("c", i%2), Device: "d", Format: "日本"} })
	b, err := encodePartial(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := decodePartial(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.counts()) != fmt.Sprint(q.counts()) || len(q.Entries) != 3 {
		t.Fatalf("round trip: %+v -> %+v", p, q)
	}
	for cut := 0; cut < len(b); cut++ { // every truncation is an error, not a panic
		if _, err := decodePartial(b[:cut]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", cut, len(b))
		}
	}
}

func TestTopOf(t *testing.T) {
	in := map[int64]map[string]int64{
		0:  {"a": 1, "b": 5, "c": 5},
		60: {"a": 4, "d": 2},
	}
	got := topOfSums(in, 3)
	want := "[{a 5} {b 5} {c 5}]"
	if fmt.Sprint(got) != want {
		t.Fatalf("top = %v, want %v (count desc, then ad_id asc)", got, want)
	}
	// The bounded selection path (many candidates) agrees with a full sort.
	big := map[int64]map[string]int64{0: {}}
	for i := 0; i < 1000; i++ {
		big[0][fmt.Sprintf("ad%04d", i)] = int64(i % 37)
	}
	sel := topOfSums(big, 10)
	if len(sel) != 10 || sel[0].Count != 36 || sel[0].AdID != "ad0036" || sel[9].Count != 36 && sel[9].Count != 35 {
		t.Fatalf("bounded top = %v", sel)
	}
	for i := 1; i < len(sel); i++ {
		if sel[i].Count > sel[i-1].Count || sel[i].Count == sel[i-1].Count && sel[i].AdID < sel[i-1].AdID {
			t.Fatalf("not ordered: %v", sel)
		}
	}
}

func TestRecordCoderRoundTrip(t *testing.T) {
	recs := []result.Record{
		{Count: &result.Count{AdID: "ad\x001", Minute: 1704103260, Count: 352}},
		{Count: &result.Count{AdID: "a", Minute: 60, Count: 2, Digest: result.Digest{Hi: 1 << 63, Lo: 7, Known: true}}},
		{Filtered: &result.FilteredCount{AdID: "a", FilterID: "device:mobile", Minute: 60, Count: 1, Digest: result.Digest{Known: true}}},
		{Filtered: &result.FilteredCount{AdID: "日本", FilterID: "country:US", Minute: -60, Count: 0}},
		{Top: &result.Top{WindowSize: 60, Minute: 1704103260, Ads: []result.AdCount{{AdID: "a", Count: 9}, {AdID: "b", Count: 1}}}},
		{Top: &result.Top{WindowSize: 1, Minute: 0, Ads: []result.AdCount{}}},
		{TooLate: &result.TooLate{AdID: "ad\x00日本", Minute: -60,
			Hashes: []result.Digest{result.EventDigest("x"), {Hi: 1 << 63, Lo: 1, Known: true}}}},
	}
	for _, r := range recs {
		b, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRecord(b)
		if err != nil || string(back.AppendJSON(nil)) != string(r.AppendJSON(nil)) {
			t.Fatalf("round trip %s -> %s (%v)", r.AppendJSON(nil), back.AppendJSON(nil), err)
		}
		for cut := 0; cut < len(b); cut++ {
			if _, err := decodeRecord(b[:cut]); err == nil {
				t.Fatalf("decoding %d of %d bytes of %s succeeded", cut, len(b), r.AppendJSON(nil))
			}
		}
	}
	if _, err := encodeRecord(result.Record{}); err == nil {
		t.Fatal("empty record encoded")
	}
}
