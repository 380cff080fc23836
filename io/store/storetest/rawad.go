package storetest

import (
	"fmt"
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
)

// testRawReadByAd: ReadRawAd returns exactly one ad's clicks of a range
// that crosses an hour boundary, ends included and excluded as ReadRaw's,
// and refuses a bad ad id or a reversed range.
func testRawReadByAd(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	r, ok := s.(store.AdRawReader)
	if !ok {
		t.Fatalf("%T does not implement store.AdRawReader", s)
	}
	b := sp.base()
	from, to := b+3600-120, b+3600+120 // two minutes either side of an hour
	var clicks []click.Click
	want := map[string]bool{}
	for i := int64(0); i < 300; i++ {
		ms := (from-60)*1000 + i*1200 // from a minute before to a minute after
		c := click.Click{EventID: fmt.Sprintf("e%d", i), AdID: fmt.Sprintf("ad-%d", i%3), Time: ms, Country: "US", UserID: "u", IP: "10.0.0.1"}
		clicks = append(clicks, c)
		if c.AdID == "ad-1" && ms >= from*1000 && ms < to*1000 {
			want[clickKey(c)] = true
		}
	}
	must(t, s.WriteRaw(ctx, clicks))
	got := map[string]int{}
	must(t, r.ReadRawAd(ctx, "ad-1", sec(from), sec(to), func(c click.Click) error {
		got[clickKey(c)]++
		return nil
	}))
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("read %d clicks of ad-1, want %d", len(got), len(want))
	}
	for k, n := range got {
		if n != 1 || !want[k] {
			t.Errorf("click %s read %d times (wanted: %v)", k, n, want[k])
		}
	}
	none := func(click.Click) error { return nil }
	wantErr(t, r.ReadRawAd(ctx, "", sec(from), sec(to), none), store.ErrInvalid, "ReadRawAd of an empty ad id")
	wantErr(t, r.ReadRawAd(ctx, "ad-1", sec(to), sec(from), none), store.ErrInvalid, "ReadRawAd to<from")
}
