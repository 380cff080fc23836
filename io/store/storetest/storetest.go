// Package storetest is the conformance suite every store.Store backend
// passes: the same tests and expectations for the embedded Pebble store and
// for Cassandra.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openMyStore(t) })
//	}
//
// newStore is called once per subtest; it may return a fresh store or one
// shared by all subtests (a Cassandra keyspace is slow to create). The suite
// isolates subtests itself: each writes its own days of event time and its own
// top-N window sizes, so subtests run in parallel on one shared store. A store
// returned by newStore is closed by the suite through t.Cleanup only if the
// factory registers that itself.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Factory returns the store under test for one subtest.
type Factory func(t *testing.T) store.Store

// space hands every subtest its own event-time days and window sizes.
type space struct {
	day    atomic.Int64
	window atomic.Int64
	epoch  int64
}

func (sp *space) base() int64 { return sp.epoch + sp.day.Add(2)*86400 } // 2 days each
func (sp *space) win() int    { return int(sp.window.Add(1)) }

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	// A random epoch day within 2030–2090 keeps repeated runs on a persistent
	// store apart too.
	sp := &space{epoch: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + rand.Int64N(20000)*86400}
	sp.window.Store(1000 + rand.Int64N(1<<20))
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store, *space)
	}{
		{"Ping", testPing},
		{"RawRoundTripAndIdempotent", testRawIdempotent},
		{"RawShardsCoverExactlyOnce", testRawShards},
		{"RawInvalid", testRawInvalid},
		{"UnicodeAndMaxLengthIDs", testUnicodeIDs},
		{"UpsertOverwrites", testOverwrite},
		{"MergeKeepsTheLarger", testMerge},
		{"CountRangeEdges", testCountRange},
		{"CountInvalid", testCountInvalid},
		{"FilteredVsUnfiltered", testFiltered},
		{"UpsertInvalidWritesNothing", testUpsertInvalid},
		{"ConcurrentWriters", testConcurrentWriters},
		{"LargeRange", testLargeRange},
		{"TopAndLatestTopMinute", testTop},
		{"ScanCounts", testScanCounts},
		{"Generations", testGenerations},
		{"GenerationTopsReachFurther", testGenerationTops},
		{"GenerationInvalid", testGenerationInvalid},
		{"GenerationSwitchWhileReading", testGenerationSwitch},
		{"ContextEnds", testContextEnds},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t), sp)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func cnt(ad string, m, c int64) result.Record {
	return result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: c}}
}

func fcnt(ad, f string, m, c int64) result.Record {
	return result.Record{Filtered: &result.FilteredCount{AdID: ad, FilterID: f, Minute: m, Count: c}}
}

func top(w int, m int64, ads ...result.AdCount) result.Record {
	return result.Record{Top: &result.Top{WindowSize: w, Minute: m, Ads: ads}}
}

func count(t *testing.T, s store.Store, ad, f string, from, to int64) int64 {
	t.Helper()
	n, err := s.Count(ctxT(t), ad, f, from, to)
	if err != nil {
		t.Fatalf("Count(%q, %q, %d, %d): %v", ad, f, from, to, err)
	}
	return n
}

func wantCount(t *testing.T, s store.Store, ad, f string, from, to, want int64) {
	t.Helper()
	if got := count(t, s, ad, f, from, to); got != want {
		t.Errorf("Count(%q, %q, +%dm, +%dm) = %d, want %d", ad, f, (from%86400)/60, (to%86400)/60, got, want)
	}
}

// readAll reads [from, to) through n shards and returns every click with how
// often it was seen, checking the shards lie inside the range.
func readAll(t *testing.T, s store.Store, from, to time.Time, n int) map[string]int {
	t.Helper()
	ctx := ctxT(t)
	shards, err := s.RawShards(ctx, from, to, n)
	must(t, err)
	if len(shards) > n {
		t.Fatalf("RawShards(n=%d) returned %d shards", n, len(shards))
	}
	seen := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(shards))
	for _, sh := range shards {
		wg.Add(1)
		go func(sh store.Shard) {
			defer wg.Done()
			errs <- s.ReadRaw(ctx, sh, func(c click.Click) error {
				ms := c.Time
				if ms < from.UnixMilli() || ms >= to.UnixMilli() {
					return fmt.Errorf("click %s at %d ms is outside [%d, %d)", c.EventID, ms, from.UnixMilli(), to.UnixMilli())
				}
				mu.Lock()
				seen[clickKey(c)]++
				mu.Unlock()
				return nil
			})
		}(sh)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	return seen
}

func clickKey(c click.Click) string {
	return fmt.Sprintf("%s|%s|%d|%s|%s|%s|%s|%s", c.EventID, c.AdID, c.Time, c.UserID, c.IP, c.Country, c.Device, c.AdFormat)
}

func sec(s int64) time.Time { return time.Unix(s, 0).UTC() }

// ---- tests ----

func testPing(t *testing.T, s store.Store, _ *space) {
	must(t, s.Ping(ctxT(t)))
	must(t, s.Sync(ctxT(t)))
}

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

func testOverwrite(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 5), fcnt("a", "country:US", b, 4), top(w, b, result.AdCount{AdID: "a", Count: 5})}))
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 3), fcnt("a", "country:US", b, 2), top(w, b, result.AdCount{AdID: "b", Count: 7}, result.AdCount{AdID: "a", Count: 3})}))
	wantCount(t, s, "a", "", b, b+60, 3)
	wantCount(t, s, "a", "country:US", b, b+60, 2)
	// Accumulating values grow: the newest write is the value, even if larger.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 11)}))
	wantCount(t, s, "a", "", b, b+60, 11)
	// Overwrite to zero.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("a", b, 0)}))
	wantCount(t, s, "a", "", b, b+60, 0)
	got, err := s.Top(ctx, w, b)
	must(t, err)
	want := result.Top{WindowSize: w, Minute: b, Ads: []result.AdCount{{AdID: "b", Count: 7}, {AdID: "a", Count: 3}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Top after overwrite = %+v, want %+v", got, want)
	}
	// Same key twice in one batch: the later one wins.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("dup", b, 1), cnt("dup", b, 2)}))
	wantCount(t, s, "dup", "", b, b+60, 2)
}

func testMerge(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	ac := func(ad string, n int64) result.AdCount { return result.AdCount{AdID: ad, Count: n} }
	must(t, s.Merge(ctx, 0, []result.Record{cnt("a", b, 5), fcnt("a", "country:US", b, 4), top(w, b, ac("a", 5), ac("b", 3))}))
	// A pane recomputed from part of the data (a restarted job) lowers nothing.
	must(t, s.Merge(ctx, 0, []result.Record{cnt("a", b, 2), fcnt("a", "country:US", b, 1), top(w, b, ac("a", 2), ac("c", 1))}))
	wantCount(t, s, "a", "", b, b+60, 5)
	wantCount(t, s, "a", "country:US", b, b+60, 4)
	got, err := s.Top(ctx, w, b)
	must(t, err)
	if want := []result.AdCount{ac("a", 5), ac("b", 3)}; !reflect.DeepEqual(got.Ads, want) {
		t.Errorf("Top after a lower pane = %v, want %v", got.Ads, want)
	}
	// A later pane grows it; an ad that overtakes another displaces it.
	must(t, s.Merge(ctx, 0, []result.Record{cnt("a", b, 8), top(w, b, ac("a", 8), ac("c", 4))}))
	wantCount(t, s, "a", "", b, b+60, 8)
	got, err = s.Top(ctx, w, b)
	must(t, err)
	if want := []result.AdCount{ac("a", 8), ac("c", 4)}; !reflect.DeepEqual(got.Ads, want) {
		t.Errorf("Top after a higher pane = %v, want %v", got.Ads, want)
	}
	// Within one call, in any order, the larger wins.
	must(t, s.Merge(ctx, 0, []result.Record{cnt("m", b, 7), cnt("m", b, 3), top(w, b+60, ac("x", 3)), top(w, b+60, ac("x", 1), ac("y", 1))}))
	wantCount(t, s, "m", "", b, b+60, 7)
	got, err = s.Top(ctx, w, b+60)
	must(t, err)
	if want := []result.AdCount{ac("x", 3), ac("y", 1)}; !reflect.DeepEqual(got.Ads, want) {
		t.Errorf("Top merged within one call = %v, want %v", got.Ads, want)
	}
}

func testCountRange(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	// Minutes from 23:50 to 00:10 across the day (and hour) boundary, count 1<<i.
	start := b + 86400 - 10*60
	var recs []result.Record
	for i := int64(0); i < 20; i++ {
		recs = append(recs, cnt("ad-range", start+i*60, 1<<i))
	}
	must(t, s.Upsert(ctx, 0, recs))
	sum := func(i, j int64) int64 { // minutes i..j-1
		var n int64
		for k := i; k < j; k++ {
			n += 1 << k
		}
		return n
	}
	m := func(i int64) int64 { return start + i*60 }
	wantCount(t, s, "ad-range", "", m(0), m(20), sum(0, 20))
	wantCount(t, s, "ad-range", "", m(2), m(5), sum(2, 5))       // half-open: minute 5 excluded
	wantCount(t, s, "ad-range", "", m(9), m(11), sum(9, 11))     // across midnight
	wantCount(t, s, "ad-range", "", m(10), m(11), sum(10, 11))   // exactly one minute
	wantCount(t, s, "ad-range", "", m(7), m(7), 0)               // empty range
	wantCount(t, s, "ad-range", "", m(-30), m(50), sum(0, 20))   // wider than the data
	wantCount(t, s, "ad-range", "", m(20), m(40), 0)             // after the data
	wantCount(t, s, "other", "", m(0), m(20), 0)                 // unknown ad
	wantCount(t, s, "ad-range", "country:US", m(0), m(20), 0)    // no filtered rows
	wantCount(t, s, "ad-range", "", m(19), m(19)+86400*3, 1<<19) // a long range
}

func testCountInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	for name, r := range map[string][2]int64{
		"unaligned from": {b + 1, b + 60},
		"unaligned to":   {b, b + 61},
		"from after to":  {b + 120, b + 60},
	} {
		_, err := s.Count(ctx, "ad", "", r[0], r[1])
		wantErr(t, err, store.ErrInvalid, "Count "+name)
		wantErr(t, s.ScanCounts(ctx, r[0], r[1], func(result.Record) error { return nil }), store.ErrInvalid, "ScanCounts "+name)
	}
	_, err := s.Count(ctx, "", "", b, b+60)
	wantErr(t, err, store.ErrInvalid, "Count empty ad id")
	_, err = s.Top(ctx, 0, b)
	wantErr(t, err, store.ErrInvalid, "Top window 0")
	_, err = s.Top(ctx, 5, b+30)
	wantErr(t, err, store.ErrInvalid, "Top unaligned minute")
	_, err = s.LatestTopMinute(ctx, -1)
	wantErr(t, err, store.ErrInvalid, "LatestTopMinute window -1")
}

func testFiltered(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	must(t, s.Upsert(ctx, 0, []result.Record{
		cnt("ad", b, 10), cnt("ad", b+60, 20),
		fcnt("ad", "country:US", b, 3), fcnt("ad", "country:US", b+60, 4),
		fcnt("ad", "country:DE", b, 5), fcnt("ad", "device:ios", b+60, 6),
		fcnt("ad2", "country:US", b, 100),
	}))
	wantCount(t, s, "ad", "", b, b+120, 30)
	wantCount(t, s, "ad", "country:US", b, b+120, 7)
	wantCount(t, s, "ad", "country:DE", b, b+120, 5)
	wantCount(t, s, "ad", "device:ios", b, b+120, 6)
	wantCount(t, s, "ad", "device:android", b, b+120, 0)
	wantCount(t, s, "ad", "country:U", b, b+120, 0) // no prefix matching
	wantCount(t, s, "ad2", "", b, b+120, 0)
	wantCount(t, s, "ad2", "country:US", b, b+120, 100)
}

func testUpsertInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	good := cnt("ad", b, 1)
	for name, r := range map[string]result.Record{
		"empty record":       {},
		"two kinds":          {Count: &result.Count{AdID: "x", Minute: b, Count: 1}, Top: &result.Top{WindowSize: 1, Minute: b}},
		"unaligned minute":   cnt("ad", b+1, 1),
		"negative count":     cnt("ad", b, -1),
		"empty ad":           cnt("", b, 1),
		"empty filter":       fcnt("ad", "", b, 1),
		"window 0":           top(0, b),
		"top empty ad":       top(1, b, result.AdCount{Count: 1}),
		"top unaligned":      top(1, b+5),
		"filtered unaligned": fcnt("ad", "country:US", b-30, 1),
	} {
		wantErr(t, s.Upsert(ctx, 0, []result.Record{good, r}), store.ErrInvalid, "Upsert "+name)
	}
	wantCount(t, s, "ad", "", b, b+60, 0) // the valid record of a rejected batch is not written
	wantErr(t, s.Upsert(ctx, -1, []result.Record{good}), store.ErrInvalid, "Upsert generation -1")
	must(t, s.Upsert(ctx, 0, nil))
}

func testConcurrentWriters(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	const writers, ads, minutes = 8, 10, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Each writer owns its ads and also writes shared keys; the
			// shared keys' final round (below) decides them.
			for round := 0; round < 5; round++ {
				var recs []result.Record
				for a := 0; a < ads; a++ {
					for m := 0; m < minutes; m++ {
						recs = append(recs, cnt(fmt.Sprintf("w%d-ad%d", w, a), b+int64(m)*60, int64(round*100+w)))
						recs = append(recs, cnt("shared", b+int64(m)*60, int64(round)))
					}
				}
				if err := s.Upsert(ctx, 0, recs); err != nil {
					errs <- err
					return
				}
			}
			var clicks []click.Click
			for i := 0; i < 200; i++ {
				clicks = append(clicks, click.Click{EventID: fmt.Sprintf("e%d", i%150), AdID: "cw", Time: b*1000 + int64(i%150)})
			}
			errs <- s.WriteRaw(ctx, clicks) // all writers write the same 150 clicks
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for w := 0; w < writers; w++ {
		for a := 0; a < ads; a++ {
			wantCount(t, s, fmt.Sprintf("w%d-ad%d", w, a), "", b, b+minutes*60, int64(minutes*(400+w)))
		}
	}
	wantCount(t, s, "shared", "", b, b+minutes*60, minutes*4)
	if seen := readAll(t, s, sec(b), sec(b+60), 3); len(seen) != 150 {
		t.Errorf("concurrent raw writers: read %d clicks, want 150", len(seen))
	}
}

func testLargeRange(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base() + 30*60 // not hour-aligned: spans two hours
	const ads, minutes = 100, 60
	var recs []result.Record
	want := map[string]int64{}
	for a := 0; a < ads; a++ {
		id := fmt.Sprintf("large-%03d", a)
		for m := 0; m < minutes; m++ {
			recs = append(recs, cnt(id, b+int64(m)*60, int64(a+m)), fcnt(id, "device:tv", b+int64(m)*60, int64(a)))
			want[id] += int64(a + m)
		}
	}
	for i := 0; i < len(recs); i += 1000 {
		must(t, s.Upsert(ctx, 0, recs[i:min(i+1000, len(recs))]))
	}
	for a := 0; a < ads; a++ {
		id := fmt.Sprintf("large-%03d", a)
		wantCount(t, s, id, "", b, b+minutes*60, want[id])
		wantCount(t, s, id, "device:tv", b, b+minutes*60, int64(a*minutes))
	}
	n := 0
	must(t, s.ScanCounts(ctx, b, b+minutes*60, func(result.Record) error { n++; return nil }))
	if n != len(recs) {
		t.Errorf("ScanCounts over the large range returned %d records, want %d", n, len(recs))
	}
}

func testTop(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w, w2 := sp.win(), sp.win()
	_, err := s.Top(ctx, w, b)
	wantErr(t, err, store.ErrNotFound, "Top before any write")
	_, err = s.LatestTopMinute(ctx, w)
	wantErr(t, err, store.ErrNotFound, "LatestTopMinute before any write")
	ads := []result.AdCount{{AdID: "z", Count: 9}, {AdID: "a", Count: 5}, {AdID: "b", Count: 5}}
	must(t, s.Upsert(ctx, 0, []result.Record{top(w, b+120, ads...), top(w, b, ads[:1]...), top(w, b+60), top(w2, b+600, ads...)}))
	got, err := s.Top(ctx, w, b+120)
	must(t, err)
	if want := (result.Top{WindowSize: w, Minute: b + 120, Ads: ads}); !reflect.DeepEqual(got, want) {
		t.Errorf("Top = %+v, want %+v (order kept)", got, want)
	}
	got, err = s.Top(ctx, w, b+60)
	must(t, err)
	if len(got.Ads) != 0 || got.WindowSize != w || got.Minute != b+60 {
		t.Errorf("empty top list = %+v", got)
	}
	_, err = s.Top(ctx, w, b+180)
	wantErr(t, err, store.ErrNotFound, "Top at a minute without a list")
	lm, err := s.LatestTopMinute(ctx, w)
	must(t, err)
	if lm != b+120 {
		t.Errorf("LatestTopMinute(%d) = %d, want %d", w, lm, b+120)
	}
	lm, err = s.LatestTopMinute(ctx, w2)
	must(t, err)
	if lm != b+600 {
		t.Errorf("LatestTopMinute(%d) = %d, want %d", w2, lm, b+600)
	}
	// A later minute moves it; an earlier one does not.
	must(t, s.Upsert(ctx, 0, []result.Record{top(w, b+3600*5, ads...), top(w, b-3600)}))
	if lm, _ = s.LatestTopMinute(ctx, w); lm != b+3600*5 {
		t.Errorf("LatestTopMinute after a later write = %d, want %d", lm, b+3600*5)
	}
}

func testScanCounts(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	recs := []result.Record{
		cnt("a", b-60, 1),                 // before: out
		cnt("a", b, 2), cnt("b", b+60, 3), // in
		fcnt("a", "country:US", b+120, 4), // in
		cnt("a", b+3600, 5),               // next hour: in
		cnt("a", b+7200, 6),               // end: out
		top(sp.win(), b, result.AdCount{AdID: "a", Count: 2}),
	}
	must(t, s.Upsert(ctx, 0, recs))
	var got []string
	must(t, s.ScanCounts(ctx, b, b+7200, func(r result.Record) error {
		got = append(got, r.Key()+fmt.Sprintf("=%d", recCount(r)))
		return nil
	}))
	sort.Strings(got)
	var want []string
	for _, r := range recs[1:5] {
		want = append(want, r.Key()+fmt.Sprintf("=%d", recCount(r)))
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ScanCounts = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	err := s.ScanCounts(ctx, b, b+7200, func(result.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("ScanCounts did not stop at fn's error: err=%v after %d calls", err, n)
	}
	must(t, s.ScanCounts(ctx, b, b, func(result.Record) error { t.Error("empty range called fn"); return nil }))
}

func recCount(r result.Record) int64 {
	if r.Count != nil {
		return r.Count.Count
	}
	return r.Filtered.Count
}

func testGenerations(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	// Live data for minutes 0..9.
	var live []result.Record
	for i := int64(0); i < 10; i++ {
		live = append(live, cnt("ad", b+i*60, 1), fcnt("ad", "country:US", b+i*60, 1), top(w, b+i*60, result.AdCount{AdID: "ad", Count: 1}))
	}
	must(t, s.Upsert(ctx, 0, live))
	// Recalculate minutes [3, 7): values 10, minute 5 has no row at all.
	g, err := s.NewGeneration(ctx, b+3*60, b+7*60, b+7*60)
	must(t, err)
	if g <= store.LiveGeneration {
		t.Fatalf("NewGeneration returned %d", g)
	}
	var recalc []result.Record
	for i := int64(3); i < 7; i++ {
		if i == 5 {
			continue
		}
		recalc = append(recalc, cnt("ad", b+i*60, 10), fcnt("ad", "country:US", b+i*60, 10), top(w, b+i*60, result.AdCount{AdID: "re", Count: 10}))
	}
	recalc = append(recalc, cnt("ad", b+8*60, 1000)) // outside its range: never served
	must(t, s.Upsert(ctx, g, recalc))
	// Not committed: reads unchanged.
	wantCount(t, s, "ad", "", b, b+600, 10)
	wantCount(t, s, "ad", "country:US", b, b+600, 10)
	if tp, _ := s.Top(ctx, w, b+4*60); len(tp.Ads) != 1 || tp.Ads[0].AdID != "ad" {
		t.Errorf("uncommitted generation served a top list: %+v", tp)
	}
	must(t, s.CommitGeneration(ctx, g))
	// Minutes 0-2, 7-9 live (6), 3,4,6 recalculated (30), 5 empty in gen.
	wantCount(t, s, "ad", "", b, b+600, 36)
	wantCount(t, s, "ad", "country:US", b, b+600, 36)
	wantCount(t, s, "ad", "", b+5*60, b+6*60, 0)
	wantCount(t, s, "ad", "", b+8*60, b+9*60, 1)
	if tp, err := s.Top(ctx, w, b+4*60); err != nil || len(tp.Ads) != 1 || tp.Ads[0].AdID != "re" {
		t.Errorf("Top after commit = %+v, %v; want the recalculated list", tp, err)
	}
	_, err = s.Top(ctx, w, b+5*60)
	wantErr(t, err, store.ErrNotFound, "Top at a recalculated minute without a list")
	if tp, err := s.Top(ctx, w, b+9*60); err != nil || tp.Ads[0].AdID != "ad" {
		t.Errorf("Top outside the generation = %+v, %v", tp, err)
	}
	lm, err := s.LatestTopMinute(ctx, w)
	must(t, err)
	if lm != b+9*60 {
		t.Errorf("LatestTopMinute = %d, want %d", lm, b+9*60)
	}
	// ScanCounts serves the switched values.
	var scanned int64
	must(t, s.ScanCounts(ctx, b, b+600, func(r result.Record) error { scanned += recCount(r); return nil }))
	if scanned != 72 {
		t.Errorf("ScanCounts total = %d, want 72", scanned)
	}
	must(t, s.CommitGeneration(ctx, g)) // idempotent
	wantCount(t, s, "ad", "", b, b+600, 36)
	// Writing the committed generation after the commit is visible.
	must(t, s.Upsert(ctx, g, []result.Record{cnt("ad", b+5*60, 7)}))
	wantCount(t, s, "ad", "", b, b+600, 43)
	// A later generation over [6, 10) wins over both where they overlap, and
	// its latest top minute counts even if live has one later in its range.
	g2, err := s.NewGeneration(ctx, b+6*60, b+10*60, b+10*60)
	must(t, err)
	if g2 == g {
		t.Fatal("NewGeneration returned the same generation twice")
	}
	must(t, s.Upsert(ctx, g2, []result.Record{cnt("ad", b+6*60, 100), top(w, b+7*60, result.AdCount{AdID: "g2", Count: 1})}))
	must(t, s.CommitGeneration(ctx, g2))
	// 0-2 live 3, 3-4 g 20, 5 g 7, 6 g2 100, 7-9 g2 0
	wantCount(t, s, "ad", "", b, b+600, 130)
	if lm, err = s.LatestTopMinute(ctx, w); err != nil || lm != b+7*60 {
		t.Errorf("LatestTopMinute with the later generation = %d, %v; want %d", lm, err, b+7*60)
	}
	// Live writes into a switched range are not served; outside they are.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("ad", b+4*60, 500), cnt("ad", b+11*60, 2)}))
	wantCount(t, s, "ad", "", b, b+720, 132)
}

// testGenerationTops: a generation whose top lists reach past its counts
// (a replay rewrites every window that sums a replayed minute) serves its
// counts only in [from, to) and its top lists in [from, topTo); one commit
// switches both.
func testGenerationTops(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	w := sp.win()
	var live []result.Record
	for i := int64(0); i < 12; i++ {
		live = append(live, cnt("ad", b+i*60, 1), top(w, b+i*60, result.AdCount{AdID: "ad", Count: 1}))
	}
	must(t, s.Upsert(ctx, 0, live))
	g, err := s.NewGeneration(ctx, b+3*60, b+5*60, b+9*60)
	must(t, err)
	var recalc []result.Record
	for i := int64(3); i < 9; i++ {
		recalc = append(recalc, top(w, b+i*60, result.AdCount{AdID: "re", Count: 10}))
		// A count after to is never served from g, even if written.
		recalc = append(recalc, cnt("ad", b+i*60, 10))
	}
	recalc = append(recalc, top(w, b+9*60, result.AdCount{AdID: "re", Count: 10})) // after topTo: never served
	must(t, s.Upsert(ctx, g, recalc))
	if tp, err := s.Top(ctx, w, b+6*60); err != nil || tp.Ads[0].AdID != "ad" {
		t.Errorf("Top after to before the commit = %+v, %v; want the live list", tp, err)
	}
	must(t, s.CommitGeneration(ctx, g))
	// Counts: minutes 3-4 from g (20), the other 10 minutes live.
	wantCount(t, s, "ad", "", b, b+720, 30)
	wantCount(t, s, "ad", "", b+5*60, b+9*60, 4)
	for i := int64(0); i < 12; i++ {
		want := "ad"
		if i >= 3 && i < 9 {
			want = "re"
		}
		if tp, err := s.Top(ctx, w, b+i*60); err != nil || len(tp.Ads) != 1 || tp.Ads[0].AdID != want {
			t.Errorf("Top at minute %d = %+v, %v; want %s's list", i, tp, err, want)
		}
	}
	var scanned int64
	must(t, s.ScanCounts(ctx, b, b+720, func(r result.Record) error { scanned += recCount(r); return nil }))
	if scanned != 30 {
		t.Errorf("ScanCounts total = %d, want 30", scanned)
	}
	if lm, err := s.LatestTopMinute(ctx, w); err != nil || lm != b+11*60 {
		t.Errorf("LatestTopMinute = %d, %v; want the live %d", lm, err, b+11*60)
	}
	// Live writes after to: counts are served, top lists up to topTo are not.
	must(t, s.Upsert(ctx, 0, []result.Record{cnt("ad", b+6*60, 5), top(w, b+7*60, result.AdCount{AdID: "late", Count: 1})}))
	wantCount(t, s, "ad", "", b+6*60, b+7*60, 5)
	if tp, err := s.Top(ctx, w, b+7*60); err != nil || tp.Ads[0].AdID != "re" {
		t.Errorf("Top at minute 7 after a live write = %+v, %v; want g's list", tp, err)
	}
	// A generation whose top lists reach past every live list serves the
	// latest one, and only within its top range.
	w2 := sp.win()
	must(t, s.Upsert(ctx, 0, []result.Record{top(w2, b+20*60, result.AdCount{AdID: "ad", Count: 1})}))
	g2, err := s.NewGeneration(ctx, b+18*60, b+21*60, b+30*60)
	must(t, err)
	must(t, s.Upsert(ctx, g2, []result.Record{top(w2, b+25*60, result.AdCount{AdID: "re", Count: 1}), top(w2, b+30*60, result.AdCount{AdID: "re", Count: 1})}))
	must(t, s.CommitGeneration(ctx, g2))
	if lm, err := s.LatestTopMinute(ctx, w2); err != nil || lm != b+25*60 {
		t.Errorf("LatestTopMinute = %d, %v; want %d, the latest list in the generation's top range", lm, err, b+25*60)
	}
}

func testGenerationInvalid(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	_, err := s.NewGeneration(ctx, b, b, b)
	wantErr(t, err, store.ErrInvalid, "NewGeneration empty range")
	_, err = s.NewGeneration(ctx, b+60, b, b+60)
	wantErr(t, err, store.ErrInvalid, "NewGeneration reversed range")
	_, err = s.NewGeneration(ctx, b+1, b+60, b+60)
	wantErr(t, err, store.ErrInvalid, "NewGeneration unaligned")
	_, err = s.NewGeneration(ctx, b, b+120, b+60)
	wantErr(t, err, store.ErrInvalid, "NewGeneration with top lists ending before the counts")
	_, err = s.NewGeneration(ctx, b, b+60, b+90)
	wantErr(t, err, store.ErrInvalid, "NewGeneration with an unaligned end of top lists")
	wantErr(t, s.CommitGeneration(ctx, store.LiveGeneration), store.ErrInvalid, "CommitGeneration(live)")
	wantErr(t, s.CommitGeneration(ctx, 1<<60), store.ErrNotFound, "CommitGeneration(unknown)")
	wantErr(t, s.Upsert(ctx, 1<<60, []result.Record{cnt("ad", b, 1)}), store.ErrInvalid, "Upsert to an unreserved generation")
}

func testGenerationSwitch(t *testing.T, s store.Store, sp *space) {
	ctx := ctxT(t)
	b := sp.base()
	const ads, minutes = 5, 60
	var old, neu []result.Record
	for a := 0; a < ads; a++ {
		for m := int64(0); m < minutes; m++ {
			old = append(old, cnt(fmt.Sprint("sw", a), b+m*60, 1))
			neu = append(neu, cnt(fmt.Sprint("sw", a), b+m*60, 2))
		}
	}
	must(t, s.Upsert(ctx, 0, old))
	g, err := s.NewGeneration(ctx, b, b+minutes*60, b+minutes*60)
	must(t, err)
	must(t, s.Upsert(ctx, g, neu))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	errs := make(chan error, 4)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			ad := fmt.Sprint("sw", r%ads)
			sawNew := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := s.Count(ctx, ad, "", b, b+minutes*60)
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
				switch {
				case n == minutes:
					if sawNew {
						bad.Add(1) // went back to old values
					}
				case n == 2*minutes:
					sawNew = true
				default:
					bad.Add(1) // a mix
				}
			}
		}(r)
	}
	time.Sleep(100 * time.Millisecond)
	must(t, s.CommitGeneration(ctx, g))
	// The committing process sees the switch at once.
	for a := 0; a < ads; a++ {
		wantCount(t, s, fmt.Sprint("sw", a), "", b, b+minutes*60, 2*minutes)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if bad.Load() > 0 {
		t.Errorf("%d of %d concurrent reads saw a mix of generations or went back", bad.Load(), reads.Load())
	}
	if reads.Load() < 4 {
		t.Errorf("only %d concurrent reads ran", reads.Load())
	}
}

// testContextEnds: a call whose context has ended fails as unavailable, and
// a deadline stops even a Count over centuries (one seek or query per hour or
// day of the range: minutes of work if nothing checked the context).
func testContextEnds(t *testing.T, s store.Store, sp *space) {
	b := sp.base()
	w := sp.win()
	must(t, s.Upsert(ctxT(t), 0, []result.Record{cnt("ctx-ad", b, 1), top(w, b, result.AdCount{AdID: "ctx-ad", Count: 1})}))
	shards, err := s.RawShards(ctxT(t), sec(b), sec(b+3600), 1)
	must(t, err)

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Count", func(ctx context.Context) error { _, err := s.Count(ctx, "ctx-ad", "", b, b+60); return err }},
		{"Top", func(ctx context.Context) error { _, err := s.Top(ctx, w, b); return err }},
		{"LatestTopMinute", func(ctx context.Context) error { _, err := s.LatestTopMinute(ctx, w); return err }},
		{"ScanCounts", func(ctx context.Context) error {
			return s.ScanCounts(ctx, b, b+60, func(result.Record) error { return nil })
		}},
		{"ReadRaw", func(ctx context.Context) error {
			return s.ReadRaw(ctx, shards[0], func(click.Click) error { return nil })
		}},
		{"Upsert", func(ctx context.Context) error { return s.Upsert(ctx, 0, []result.Record{cnt("ctx-ad", b, 2)}) }},
		{"Merge", func(ctx context.Context) error { return s.Merge(ctx, 0, []result.Record{cnt("ctx-ad", b, 2)}) }},
		{"WriteRaw", func(ctx context.Context) error {
			return s.WriteRaw(ctx, []click.Click{{AdID: "ctx-ad", EventID: "e1", Time: b * 1000, UserID: "u", IP: "10.0.0.1", Country: "US", Device: "mobile", AdFormat: "banner"}})
		}},
		{"NewGeneration", func(ctx context.Context) error { _, err := s.NewGeneration(ctx, b, b+60, b+60); return err }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
		{"Sync", func(ctx context.Context) error { return s.Sync(ctx) }},
	}
	for _, c := range calls {
		err := c.call(ended)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with an ended context: error %v, want ErrUnavailable", c.name, err)
		}
	}
	wantCount(t, s, "ctx-ad", "", b, b+60, 1) // nothing was written

	const budget = 200 * time.Millisecond
	ctx, cancel2 := context.WithTimeout(ctxT(t), budget)
	defer cancel2()
	start := time.Now()
	_, err = s.Count(ctx, "ctx-ad", "", 0, 253402300740) // 1970 to 9999
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Count over eight millennia with a %v deadline: error %v, want ErrUnavailable", budget, err)
	}
	if took > budget+2*time.Second {
		t.Errorf("Count over eight millennia took %v with a %v deadline", took, budget)
	}
}
