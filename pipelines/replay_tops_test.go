package pipelines_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/transforms"
)

// The production top-N configuration (transforms.DefaultConfig, README): the
// tests below check the rule "a replay of [from, to) rewrites the top lists of
// every window end in [from, to + 59 min)" with the real 60-minute window.
var (
	prodWindows = []int{1, 5, 15, 60}
	prodTopN    = 100
	prodMaxW    = 60 * time.Minute
)

func prodConfig() transforms.Config {
	cfg := transforms.DefaultConfig()
	cfg.WindowSizes, cfg.TopN = prodWindows, prodTopN
	return cfg
}

// genLongLog generates n lines over span of event time for 300 ads (more
// than the top 100, so lists are truncated), with duplicates, late,
// too-late and malformed lines.
func genLongLog(t testing.TB, n int, span time.Duration) testLog {
	t.Helper()
	g, err := clickgen.New(clickgen.Config{Seed: 18, Ads: 300, Start: testStart, EventRate: float64(n) / span.Seconds(),
		DupShare: 0.05, LateShare: 0.03, TooLateShare: 0.02, MalformedShare: 0.01, Truth: true})
	if err != nil {
		t.Fatal(err)
	}
	var l testLog
	var p click.Parser
	lo, hi := int64(1<<62), int64(-1<<62)
	for i := 0; i < n; i++ {
		b := append([]byte(nil), g.Next().Data...)
		l.lines = append(l.lines, b)
		if c, err := p.Parse(b); err == nil {
			l.clicks = append(l.clicks, c)
			lo, hi = min(lo, c.Minute()), max(hi, c.Minute())
		}
	}
	l.truth = g.Truth()
	if l.truth.Count(clickgen.TooLate) == 0 {
		t.Fatalf("generated log lacks too-late lines: %v", l.truth.Counts)
	}
	l.from, l.to = time.Unix(lo, 0).UTC(), time.Unix(hi+60, 0).UTC()
	return l
}

// servedAll is what st serves: counts and filtered counts of the minutes
// [from, to) and the top lists of every production window size ending in
// [topFrom, topTo).
func servedAll(t testing.TB, st store.Store, from, to, topFrom, topTo time.Time) reference.Results {
	t.Helper()
	ctx := context.Background()
	var recs []result.Record
	if err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range prodWindows {
		for m := topFrom.Unix(); m < topTo.Unix(); m += 60 {
			top, err := st.Top(ctx, w, m)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, result.Record{Top: &top})
		}
	}
	return reference.FromRecords(recs)
}

// span is a half-open range of minutes.
type span struct{ from, to time.Time }

func (s span) has(m int64) bool { return m >= s.from.Unix() && m < s.to.Unix() }

// pick keeps the counts and filtered counts whose minute is in one of
// counts, and the top lists whose window end is in one of tops.
func pick(r reference.Results, counts, tops []span) reference.Results {
	out := reference.Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{}}
	in := func(k string, part int, spans []span) bool {
		m, err := strconv.ParseInt(strings.Split(k, "/")[part], 10, 64)
		return err == nil && slices.ContainsFunc(spans, func(s span) bool { return s.has(m) })
	}
	for k, v := range r.Counts {
		if in(k, 0, counts) {
			out.Counts[k] = v
		}
	}
	for k, v := range r.Filtered {
		if in(k, 0, counts) {
			out.Filtered[k] = v
		}
	}
	for k, v := range r.Top {
		if in(k, 1, tops) {
			out.Top[k] = v
		}
	}
	return out
}

// shortDiff is diffResults with each line cut short: a top-100 list is a
// few kilobytes, and the key and the first entries say enough.
func shortDiff(got, want reference.Results) string {
	lines := strings.Split(diffResults(got, want), "\n")
	for i, l := range lines {
		if len(l) > 240 {
			lines[i] = l[:240] + " …"
		}
	}
	return strings.Join(lines, "\n")
}

func TestReplayWindowsAfterToPebble(t *testing.T) { testReplayWindowsAfterTo(t, pebbleStore(t), 30000) }
func TestReplayWindowsAfterToCassandra(t *testing.T) {
	testReplayWindowsAfterTo(t, cassandraStore(t), 15000)
}

// testReplayWindowsAfterTo is a recalculation drill. The store holds what a
// faulty streaming run stored for 130 minutes of traffic: GB counted as UK
// (transforms.Config.FaultCountryAs) and, as the streaming job does, the
// too-late clicks left out. The GB-as-UK fault alone cannot show in a top
// list (a list sums an ad over all countries); the too-late clicks do, so a
// top list the replay failed to rewrite keeps a value the reference recount
// does not have. A replay of ten minutes in the middle must then serve the
// reference recount of the raw clicks for every count of [from, to) and
// every top list — 1, 5, 15 and 60 minutes, top 100 — ending in
// [from, to + 59 min), the lists that end after to included; everything
// else stays as it was.
func testReplayWindowsAfterTo(t *testing.T, cfg backend.Config, n int) {
	ctx := context.Background()
	l := genLongLog(t, n, 130*time.Minute)
	if l.to.Sub(l.from) <= prodMaxW {
		t.Fatalf("data spans %v, want more than the longest window", l.to.Sub(l.from))
	}
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	tooLate := map[string]bool{}
	for _, id := range l.truth.TooLate {
		tooLate[id] = true
	}
	var realtime [][]byte
	var p click.Parser
	for _, line := range l.lines {
		if c, err := p.Parse(line); err == nil && tooLate[c.EventID] {
			continue
		}
		realtime = append(realtime, line)
	}
	faulty := prodConfig()
	faulty.FaultCountryAs = [2]string{"GB", "UK"}
	writeLive(t, cfg, realtime, faulty)

	ref := reference.Recount(l.lines, prodWindows, prodTopN, nil)
	from, to := testStart.Add(50*time.Minute), testStart.Add(60*time.Minute)
	topTo := to.Add(prodMaxW - time.Minute)
	all := span{l.from, l.to}
	allTops := span{l.from, l.to.Add(prodMaxW - time.Minute)} // every end the data defines
	rewritten := func(r reference.Results) reference.Results {
		return pick(r, []span{{from, to}}, []span{{from, topTo}})
	}
	untouched := func(r reference.Results) reference.Results {
		return pick(r, []span{{all.from, from}, {to, all.to}}, []span{{allTops.from, from}, {topTo, allTops.to}})
	}
	before := servedAll(t, st, all.from, all.to, allTops.from, allTops.to)

	// The faulty run must be visibly wrong where the replay has to repair it,
	// or the test proves nothing: in the counts of the range, and for each
	// window size longer than a minute in the lists ending after to.
	if diffResults(pick(before, []span{{from, to}}, nil), pick(ref, []span{{from, to}}, nil)) == "" {
		t.Fatal("the faulty run stored correct counts in the range")
	}
	for _, w := range prodWindows[1:] {
		after := span{to, to.Add(time.Duration(w-1) * time.Minute)}
		stale := 0
		for m := after.from.Unix(); m < after.to.Unix(); m += 60 {
			k := strconv.Itoa(w) + "/" + strconv.FormatInt(m, 10)
			if fmt.Sprint(before.Top[k]) != fmt.Sprint(ref.Top[k]) {
				stale++
			}
		}
		if stale == 0 {
			t.Fatalf("the faulty run stored correct %d-minute lists for every end in [%s, %s)", w, after.from, after.to)
		}
	}

	res, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: to, Config: prodConfig()})
	if err != nil {
		t.Fatal(err)
	}
	awaitSwitch(cfg)
	after := servedAll(t, st, all.from, all.to, allTops.from, allTops.to)
	if d := shortDiff(rewritten(after), rewritten(ref)); d != "" {
		t.Errorf("after the replay of [%s, %s), counts of the range and top lists ending in [%s, %s) differ from the reference recount:\n%s",
			from, to, from, topTo, d)
	}
	if d := shortDiff(untouched(after), untouched(before)); d != "" {
		t.Errorf("the replay changed results it does not own:\n%s", d)
	}
	if want := from.Add(-(prodMaxW - time.Minute)); !res.ReadFrom.Equal(want) {
		t.Errorf("ReadFrom = %s, want %s", res.ReadFrom, want)
	}
	t.Logf("replay of [%s, %s): %d clicks read, %d records written in %v; %d lines in all",
		from.Format("15:04"), to.Format("15:04"), res.ClicksRead, res.RecordsWritten, res.Duration, len(l.lines))
}

func TestReplayWholeRangeFromRawPebble(t *testing.T) {
	testReplayWholeRangeFromRaw(t, pebbleStore(t), 20000)
}
func TestReplayWholeRangeFromRawCassandra(t *testing.T) {
	testReplayWholeRangeFromRaw(t, cassandraStore(t), 8000)
}

// testReplayWholeRangeFromRaw: with raw clicks only (no results, no earlier
// generation), a replay of the whole range of the data serves everything the
// reference recount defines — every count and every top list, those of
// windows that end up to 59 minutes after the last click's minute included —
// and nothing else.
func testReplayWholeRangeFromRaw(t *testing.T, cfg backend.Config, n int) {
	l := genLongLog(t, n, 80*time.Minute)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	ref := reference.Recount(l.lines, prodWindows, prodTopN, nil)
	if _, err := pipelines.Replay(context.Background(), pipelines.ReplayOptions{Store: cfg, From: l.from, To: l.to, Config: prodConfig()}); err != nil {
		t.Fatal(err)
	}
	awaitSwitch(cfg)
	// An hour either side: nothing may be served outside what the data defines.
	got := servedAll(t, st, l.from.Add(-time.Hour), l.to.Add(time.Hour), l.from.Add(-time.Hour), l.to.Add(2*time.Hour))
	want := pick(ref, []span{{l.from, l.to}}, []span{{l.from, l.to.Add(prodMaxW)}})
	if len(want.Top) != len(ref.Top) {
		t.Fatalf("the reference defines top lists outside [%s, %s + 60 min)", l.from, l.to)
	}
	if d := shortDiff(got, want); d != "" {
		t.Errorf("after a whole-range replay from raw data the store differs from the reference recount:\n%s", d)
	}
	t.Logf("%d counts, %d filtered counts, %d top lists served", len(got.Counts), len(got.Filtered), len(got.Top))
}

// TestReplayOpenMinutes: top lists of window ends still open (from OpenFrom
// on) are left to the streaming job — whatever it stored there stays served
// — while those before OpenFrom are rewritten; a range ending after
// OpenFrom is refused before anything is written.
func TestReplayOpenMinutes(t *testing.T) {
	cfg := pebbleStore(t)
	ctx := context.Background()
	l := genLog(t, 6000)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	from, to := l.from.Add(5*time.Minute), l.from.Add(10*time.Minute)
	open := to.Add(3 * time.Minute) // the longest test window (15) would reach to + 14 min
	// What the streaming job stored for the open window ends: a marker no
	// recount produces.
	var live []result.Record
	for m := open; m.Before(to.Add(20 * time.Minute)); m = m.Add(time.Minute) {
		for _, w := range testWindows {
			live = append(live, result.Record{Top: &result.Top{WindowSize: w, Minute: m.Unix(), Ads: []result.AdCount{{AdID: "streaming", Count: 1}}}})
		}
	}
	if err := st.Upsert(ctx, store.LiveGeneration, live); err != nil {
		t.Fatal(err)
	}
	if _, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: open.Add(time.Minute), OpenFrom: open, Config: testConfig()}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a range ending after OpenFrom: %v, want ErrInvalid", err)
	}
	res, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: to, OpenFrom: open, Config: testConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TopsTo.Equal(open) || !res.ReadTo.Equal(open) {
		t.Errorf("TopsTo %s, ReadTo %s; want both %s (OpenFrom)", res.TopsTo, res.ReadTo, open)
	}
	ref := reference.Recount(l.lines, testWindows, testTopN, nil)
	got := served(t, st, from, to.Add(20*time.Minute))
	if d := shortDiff(pick(got, []span{{from, to}}, []span{{from, open}}), pick(ref, []span{{from, to}}, []span{{from, open}})); d != "" {
		t.Errorf("results before OpenFrom differ from the reference recount:\n%s", d)
	}
	kept := pick(got, nil, []span{{open, to.Add(20 * time.Minute)}}).Top
	if len(kept) != len(live) {
		t.Errorf("%d top lists served for the open window ends, want the streaming job's %d", len(kept), len(live))
	}
	for k, v := range kept {
		if len(v) != 1 || v[0].AdID != "streaming" {
			t.Errorf("top %s = %v: an open window end was rewritten", k, v)
		}
	}
}
