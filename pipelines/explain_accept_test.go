package pipelines_test

import (
	"context"
	"maps"
	"slices"
	"sort"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/explain"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/transforms"
)

// The acceptance test of explain: for every (ad, minute) of a generated run
// with duplicates, late and too-late clicks, the clicks explain lists as
// counted are the generator's ground truth member by member, and the digest
// recomputed from them is the stored one — on the batch and replay paths
// (every unique click counts) here, and on the streaming path (too-late
// clicks left out) in explain_stream_test.go; each on Pebble and Cassandra.

// cell is one (ad, minute).
type cell struct {
	ad     string
	minute int64
}

// groundTruth is, per (ad, minute), the event ids of the unique valid
// clicks with their country: the valid lines that are not the generator's
// Duplicate re-sends (each an exact copy of an earlier line); and the ids of
// the TooLate lines.
func groundTruth(t *testing.T, lines [][]byte, truth *clickgen.Truth) (map[cell]map[string]string, map[string]bool) {
	t.Helper()
	dups := map[string]int{}
	for _, id := range truth.Duplicates {
		dups[id]++
	}
	want := map[cell]map[string]string{}
	var p click.Parser
	unique := 0
	for _, l := range lines {
		c, err := p.Parse(l)
		if err != nil {
			continue
		}
		if _, seen := want[cell{c.AdID, c.Minute()}][c.EventID]; seen && dups[c.EventID] > 0 {
			dups[c.EventID]-- // a re-send of a line already taken
			continue
		}
		k := cell{c.AdID, c.Minute()}
		if want[k] == nil {
			want[k] = map[string]string{}
		}
		if _, seen := want[k][c.EventID]; seen {
			t.Fatalf("event id %s repeats beyond the generator's duplicates", c.EventID)
		}
		want[k][c.EventID] = c.Country
		unique++
	}
	for id, n := range dups {
		if n != 0 {
			t.Fatalf("duplicate %s: %d re-sends not found after their original", id, n)
		}
	}
	tooLate := map[string]bool{}
	for _, id := range truth.TooLate {
		tooLate[id] = true
	}
	if unique == 0 || len(truth.Duplicates) == 0 || len(tooLate) == 0 || truth.Count(clickgen.Late) == 0 {
		t.Fatalf("the run lacks clicks, duplicates, late or too-late ones: %v", truth.Counts)
	}
	return want, tooLate
}

// explainCheck is what checkExplain found.
type explainCheck struct {
	cells, tooLateFound int
	recorded            int    // too-late clicks found in the streaming job's records
	most                int    // the most too-late clicks of one minute
	unexplained         []cell // never, now that the job records them
}

// checkExplain explains every ad of want over [from, to) — its count, and
// its filtered count of country (when not empty) — and checks every minute
// against the ground truth. live: the stored counts are the streaming job's,
// which left the too-late clicks out and recorded which (result.TooLate);
// explain reads those records from the store, and every minute, however
// many too-late clicks it had, must match.
func checkExplain(t *testing.T, st store.Store, from, to int64, want map[cell]map[string]string, tooLate map[string]bool, live bool, country string) explainCheck {
	t.Helper()
	es, ok := st.(explain.Store)
	if !ok {
		t.Fatalf("%T cannot explain", st)
	}
	ads := map[string]bool{}
	for k := range want {
		ads[k.ad] = true
	}
	var res explainCheck
	for _, ad := range slices.Sorted(maps.Keys(ads)) {
		o := explain.Options{Store: es, AdID: ad, From: from, To: to, TooLate: explain.StoreTooLate(st)}
		if country != "" {
			o.FilterID = result.FilterID(result.DimCountry, country)
		}
		ex, err := explain.New(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ex.Run(context.Background(), func(m *explain.Minute) error {
			res.cells++
			checkMinute(t, cell{ad, m.Summary.Minute}, m, inCountry(want[cell{ad, m.Summary.Minute}], country), tooLate, live, &res)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// inCountry is the ids of truth in country ("": all of them).
func inCountry(truth map[string]string, country string) map[string]bool {
	out := map[string]bool{}
	for id, c := range truth {
		if country == "" || c == country {
			out[id] = true
		}
	}
	return out
}

func checkMinute(t *testing.T, k cell, m *explain.Minute, truth, tooLate map[string]bool, live bool, res *explainCheck) {
	t.Helper()
	s := &m.Summary
	if s.Live() != live {
		t.Fatalf("%v: served by generation %d, want live=%v", k, s.Generation, live)
	}
	var want []string
	late := 0
	for id := range truth {
		if live && tooLate[id] {
			late++
			continue
		}
		want = append(want, id)
	}
	if s.Verdict == explain.Unexplained {
		res.unexplained = append(res.unexplained, k)
	}
	res.most = max(res.most, late)
	var got []string
	for _, r := range m.Rows {
		if r.Status == explain.Counted {
			got = append(got, r.Click.EventID)
		} else if r.Reason == explain.ReasonTooLateRecorded {
			res.recorded++
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	wantD := result.Digest{Known: true}
	for _, id := range want {
		wantD = wantD.Add(result.EventDigest(id))
	}
	switch {
	case !slices.Equal(got, want):
		t.Errorf("%v: explain counts %d clicks %v, the ground truth %d %v", k, len(got), got, len(want), want)
	case s.Verdict != explain.Match || s.Digest != s.StoredDigest || s.StoredDigest != wantD || s.TooLate != late:
		t.Errorf("%v: verdict %s, digest %v, stored %v (want %v), too late %d (want %d)", k, s.Verdict, s.Digest, s.StoredDigest, wantD, s.TooLate, late)
	}
	res.tooLateFound += s.TooLate
}

func TestExplainAcceptanceBatchPebble(t *testing.T)    { testExplainBatch(t, pebbleStore(t), 6000) }
func TestExplainAcceptanceBatchCassandra(t *testing.T) { testExplainBatch(t, cassandraStore(t), 3000) }
func TestExplainAcceptanceReplayPebble(t *testing.T)   { testExplainReplay(t, pebbleStore(t), 6000) }
func TestExplainAcceptanceReplayCassandra(t *testing.T) {
	testExplainReplay(t, cassandraStore(t), 3000)
}

// testExplainBatch: the batch recount of the log upserted into a replay
// generation of the whole range.
func testExplainBatch(t *testing.T, cfg backend.Config, n int) {
	ctx := context.Background()
	l := genLog(t, n)
	want, tooLate := groundTruth(t, l.lines, l.truth)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	gen, err := st.NewGeneration(ctx, l.from.Unix(), l.to.Unix(), l.to.Unix())
	if err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	out, err := transforms.Aggregate(s, beam.Create(s, click.Lines{Lines: l.lines, Watermark: click.NoWatermark}), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, recs := range out.RecordParts {
		if err := storeio.WriteAggregates(s, cfg, gen, recs, storeio.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runners.Run(ctx, p, runners.Options{Runner: runners.Prism}); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitGeneration(ctx, gen); err != nil {
		t.Fatal(err)
	}
	awaitSwitch(cfg)
	res := checkExplain(t, st, l.from.Unix(), l.to.Unix(), want, tooLate, false, "")
	f := checkExplain(t, st, l.from.Unix(), l.to.Unix(), want, tooLate, false, "US")
	t.Logf("batch: %d (ad, minute) cells explained, %d with clicks; %d with filter country:US", res.cells, len(want), f.cells)
}

// testExplainReplay: pipelines.Replay of the whole range from the raw store.
func testExplainReplay(t *testing.T, cfg backend.Config, n int) {
	l := genLog(t, n)
	want, tooLate := groundTruth(t, l.lines, l.truth)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	if _, err := pipelines.Replay(context.Background(), pipelines.ReplayOptions{Store: cfg, From: l.from, To: l.to,
		Config: testConfig(), Runner: runners.Options{Runner: runners.Prism}}); err != nil {
		t.Fatal(err)
	}
	awaitSwitch(cfg)
	res := checkExplain(t, st, l.from.Unix(), l.to.Unix(), want, tooLate, false, "")
	f := checkExplain(t, st, l.from.Unix(), l.to.Unix(), want, tooLate, false, "US")
	t.Logf("replay: %d (ad, minute) cells explained, %d with clicks; %d with filter country:US", res.cells, len(want), f.cells)
}
