package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func testRawIdempotent(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	var clicks []click.Click
	for i := 0; i < 300; i++ {
		clicks = append(clicks, click.Click{
			EventID: fmt.Sprintf("ev-%d", i), AdID: fmt.Sprintf("ad-%d", i%7),
			Time:   (b+int64(i)*37)*1000 + int64(i%1000),
			UserID: "u" + fmt.Sprint(i%13), IP: "10.0.0." + fmt.Sprint(i%250), Country: []string{"US", "DE", ""}[i%3],
			Device: []string{"ios", "android"}[i%2], AdFormat: []string{"", "banner", "video"}[i%3],
		})
	}
	must(t, s.WriteRaw(ctx, clicks))
	must(t, s.WriteRaw(ctx, clicks[100:200])) // again: stored once
	must(t, s.WriteRaw(ctx, clicks))
	must(t, s.WriteRaw(ctx, nil))
	seen := readAll(t, s, sec(b), sec(b+86400), 4)
	if len(seen) != len(clicks) {
		t.Fatalf("read %d distinct clicks, want %d", len(seen), len(clicks))
	}
	for _, c := range clicks {
		if seen[clickKey(c)] != 1 {
			t.Fatalf("click %+v seen %d times, want 1 with every attribute intact", c, seen[clickKey(c)])
		}
	}
}

func testRawShards(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	from, to := b+3600, b+4*3600 // three hours, not starting at the day
	rng := rand.New(rand.NewPCG(1, 2))
	var clicks []click.Click
	want := map[string]bool{}
	add := func(ms int64, in bool) {
		c := click.Click{EventID: fmt.Sprintf("e%d", len(clicks)), AdID: fmt.Sprintf("ad-%d", rng.IntN(40)), Time: ms}
		clicks = append(clicks, c)
		if in {
			want[clickKey(c)] = true
		}
	}
	for i := 0; i < 2000; i++ {
		add(from*1000+rng.Int64N((to-from)*1000), true)
	}
	add(from*1000, true)    // first millisecond: in
	add(to*1000-1, true)    // last millisecond: in
	add(to*1000, false)     // end: out (half-open)
	add(from*1000-1, false) // just before: out
	add((from-3600)*1000, false)
	add((to+3600)*1000, false)
	// Same event id for two ads and two times: distinct clicks by (ad, time, id).
	add(from*1000+5, true)
	clicks[len(clicks)-1].EventID = "dup"
	add(from*1000+6, true)
	clicks[len(clicks)-1].EventID = "dup"
	want = map[string]bool{}
	for _, c := range clicks {
		if c.Time >= from*1000 && c.Time < to*1000 {
			want[clickKey(c)] = true
		}
	}
	for i := 0; i < len(clicks); i += 500 {
		must(t, s.WriteRaw(ctx, clicks[i:min(i+500, len(clicks))]))
	}
	for _, n := range []int{1, 2, 3, 7, 16, 64} {
		seen := readAll(t, s, sec(from), sec(to), n)
		if len(seen) != len(want) {
			t.Errorf("n=%d: read %d distinct clicks, want %d", n, len(seen), len(want))
		}
		for k, c := range seen {
			if c != 1 || !want[k] {
				t.Errorf("n=%d: click %s seen %d times (wanted: %v)", n, k, c, want[k])
			}
		}
	}
	// A sub-range that is not hour-aligned, with sub-second ends.
	sub := map[string]bool{}
	lo, hi := sec(from+1234).Add(500*time.Millisecond), sec(from+5000)
	for _, c := range clicks {
		if c.Time >= lo.UnixMilli() && c.Time < hi.UnixMilli() {
			sub[clickKey(c)] = true
		}
	}
	seen := readAll(t, s, lo, hi, 5)
	if len(seen) != len(sub) {
		t.Errorf("sub-range: read %d clicks, want %d", len(seen), len(sub))
	}
	// An empty range: no clicks.
	if seen := readAll(t, s, sec(from), sec(from), 4); len(seen) != 0 {
		t.Errorf("empty range read %d clicks", len(seen))
	}
}

func testRawInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	good := click.Click{EventID: "ok", AdID: "ad", Time: b * 1000}
	long := strings.Repeat("x", store.MaxIDBytes+1)
	for name, c := range map[string]click.Click{
		"empty event id": {AdID: "ad", Time: b * 1000},
		"empty ad id":    {EventID: "e", Time: b * 1000},
		"long event id":  {EventID: long, AdID: "ad", Time: b * 1000},
		"long ad id":     {EventID: "e", AdID: long, Time: b * 1000},
		"long country":   {EventID: "e", AdID: "ad", Country: long, Time: b * 1000},
		"time 1999":      {EventID: "e", AdID: "ad", Time: time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli()},
	} {
		wantErr(t, s.WriteRaw(ctx, []click.Click{good, c}), store.ErrInvalid, "WriteRaw "+name)
	}
	if seen := readAll(t, s, sec(b), sec(b+60), 1); len(seen) != 0 {
		t.Errorf("a rejected batch stored %d clicks", len(seen))
	}
	_, err := s.RawShards(ctx, sec(b), sec(b+60), 0)
	wantErr(t, err, store.ErrInvalid, "RawShards n=0")
	_, err = s.RawShards(ctx, sec(b+60), sec(b), 2)
	wantErr(t, err, store.ErrInvalid, "RawShards to<from")
}

func testUnicodeIDs(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	max1 := strings.Repeat("é", store.MaxIDBytes/2) // 256 bytes, 128 runes
	max2 := strings.Repeat("😀", store.MaxIDBytes/4) // 256 bytes of 4-byte runes
	ids := []string{"広告-é-😀", max1, max2, "a/b:c|d\x00e", "'; DROP TABLE x; --"}
	var clicks []click.Click
	var recs []result.Record
	for i, id := range ids {
		clicks = append(clicks, click.Click{EventID: ids[(i+1)%len(ids)], AdID: id, Time: b*1000 + int64(i), Country: "Ελλάδα"})
		recs = append(recs, cnt(id, b, int64(i+1)), fcnt(id, "country:"+max1[:200], b, int64(10*(i+1))))
	}
	recs = append(recs, top(w, b, result.AdCount{AdID: max2, Count: 9}, result.AdCount{AdID: "広告-é-😀", Count: 1}))
	must(t, s.WriteRaw(ctx, clicks))
	must(t, s.Upsert(ctx, store.LiveGeneration, recs))
	seen := readAll(t, s, sec(b), sec(b+60), 3)
	for _, c := range clicks {
		if seen[clickKey(c)] != 1 {
			t.Errorf("click with ad id %q not read back intact", c.AdID)
		}
	}
	for i, id := range ids {
		wantCount(t, s, id, "", b, b+60, int64(i+1))
		wantCount(t, s, id, "country:"+max1[:200], b, b+60, int64(10*(i+1)))
	}
	got, err := s.Top(ctx, w, b)
	must(t, err)
	if len(got.Ads) != 2 || got.Ads[0].AdID != max2 || got.Ads[1].AdID != "広告-é-😀" {
		t.Errorf("top with unicode ids = %+v", got.Ads)
	}
	_, err = s.Count(ctx, max1+"x", "", b, b+60)
	wantErr(t, err, store.ErrInvalid, "Count with a 257-byte ad id")
	wantErr(t, s.Upsert(ctx, store.LiveGeneration, []result.Record{cnt(max1+"x", b, 1)}), store.ErrInvalid, "Upsert 257-byte ad id")
}
