package transforms

import (
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// TestTooLateRecorded: the fused stage records exactly the clicks it judged
// too late, per (ad, minute), each id once however many copies came, in
// records of at most result.MaxTooLateHashes, stamped with the watermark;
// clicks within the lateness and batch input (no watermark) record nothing.
func TestTooLateRecorded(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	m0 := t0.Unix()
	lateness := time.Minute.Milliseconds()
	wm := t0.Add(5 * time.Minute).UnixMilli() // minutes up to 10:03 are too late
	mk := func(id, ad string, at time.Duration) click.Click {
		return click.Click{EventID: id, AdID: ad, Time: t0.Add(at).UnixMilli()}
	}
	clicks := []click.Click{
		mk("a1", "ad1", 10*time.Second), mk("a1", "ad1", 10*time.Second), // a copy: judged too late again
		mk("a2", "ad1", 20*time.Second), mk("b1", "ad2", 70*time.Second),
		mk("ok", "ad1", 4*time.Minute+time.Second), // 10:04 closes at 10:05, within the lateness
	}
	for i := range result.MaxTooLateHashes + 1 { // one (ad, minute) with more than one record's worth
		clicks = append(clicks, mk("m"+strconv.Itoa(i), "ad3", 2*time.Minute))
	}
	want := map[string][]result.Digest{}
	for _, c := range clicks {
		if c.EventID == "ok" {
			continue
		}
		k := adMinuteKey(c.Minute(), c.AdID)
		if d := result.EventDigest(c.EventID); !slices.Contains(want[k], d) {
			want[k] = append(want[k], d)
		}
	}

	run := func(wm int64) (map[string][]result.Digest, int) {
		a := newBundleAgg(lateness, 1<<20, 4, [2]string{})
		a.wm = wm
		for i := range clicks {
			a.add(&clicks[i], wm)
		}
		got := map[string][]result.Digest{}
		n := 0
		a.flush(func(beam.EventTime, string, MinutePartial) {}, func(et beam.EventTime, r result.Record) {
			tl := r.TooLate
			if tl == nil || et.Milliseconds() != wm || len(tl.Hashes) == 0 || len(tl.Hashes) > result.MaxTooLateHashes {
				t.Fatalf("record %+v stamped %d", r, et.Milliseconds())
			}
			k := adMinuteKey(tl.Minute, tl.AdID)
			got[k] = append(got[k], tl.Hashes...)
			n++
		})
		if len(a.tooLate) != 0 {
			t.Error("the flush kept the too-late ids")
		}
		return got, n
	}
	got, n := run(wm)
	if len(got) != len(want) {
		t.Fatalf("recorded (ad, minute)s %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for k, w := range want {
		g := got[k]
		slices.SortFunc(g, cmpDigest)
		slices.SortFunc(w, cmpDigest)
		if !slices.Equal(g, w) {
			t.Errorf("%s: recorded %d hashes, want %d", k, len(g), len(w))
		}
	}
	if n != 4 { // ad1/10:00, ad2/10:01, ad3/10:02 in two
		t.Errorf("%d records, want 4", n)
	}
	if _, ok := got[adMinuteKey(m0, "ad1")]; !ok {
		t.Error("ad1's minute not recorded")
	}
	if got, _ := run(click.NoWatermark); len(got) != 0 {
		t.Errorf("batch input recorded %d too-late (ad, minute)s", len(got))
	}
}

// TestTooLateBounded: too-late clicks count towards a bundle's held clicks,
// so a flood of them flushes the bundle early.
func TestTooLateBounded(t *testing.T) {
	a := newBundleAgg(0, 10, 1, [2]string{})
	wm := time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 10 {
		c := click.Click{EventID: string(rune('a' + i)), AdID: "ad", Time: wm - time.Hour.Milliseconds()}
		if a.add(&c, wm) != tooLate {
			t.Fatal("not too late")
		}
	}
	if !a.full() {
		t.Error("10 too-late clicks held do not fill a bundle of 10")
	}
}

func cmpDigest(x, y result.Digest) int {
	if x.Hi != y.Hi {
		if x.Hi < y.Hi {
			return -1
		}
		return 1
	}
	switch {
	case x.Lo < y.Lo:
		return -1
	case x.Lo > y.Lo:
		return 1
	}
	return 0
}
