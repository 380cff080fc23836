package pipelines_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
)

func TestReconcilePebble(t *testing.T)    { testReconcile(t, pebbleStore(t), 12000) }
func TestReconcileCassandra(t *testing.T) { testReconcile(t, cassandraStore(t), 6000) }

// testReconcile: the store holds real-time results that miss exactly the
// too-late clicks (the raw store has them all). Reconciliation reports
// exactly those clicks — the mismatched keys and their differences, and a
// total difference equal to the generator's too-late count — above the
// threshold; --repair replays the affected minutes, after which the check is
// clean and the store serves the reference recount.
func testReconcile(t *testing.T, cfg backend.Config, n int) {
	ctx := context.Background()
	l := genLog(t, n)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)

	tooLate := map[string]bool{}
	for _, id := range l.truth.TooLate {
		tooLate[id] = true
	}
	var realtime [][]byte
	want := map[string]int64{} // "minute/filter/ad" → clicks missing from the real-time results
	var p click.Parser
	for _, line := range l.lines {
		c, err := p.Parse(line)
		if err == nil && tooLate[c.EventID] {
			m := strconv.FormatInt(c.Minute(), 10)
			want[m+"//"+c.AdID]++
			for _, f := range [][2]string{{"country", c.Country}, {"device", c.Device}, {"format", c.AdFormat}} {
				if f[1] != "" {
					want[m+"/"+f[0]+":"+f[1]+"/"+c.AdID]++
				}
			}
			continue
		}
		realtime = append(realtime, line)
	}
	writeLive(t, cfg, realtime, testConfig())

	for _, tc := range []struct {
		threshold float64
		chunk     time.Duration // 0: the default (one hour)
		exceeds   bool
	}{{pipelines.DefaultThreshold, 0, true}, {0.5, 0, false}, {pipelines.DefaultThreshold, 17 * time.Minute, true}} {
		rep, err := pipelines.Reconcile(ctx, pipelines.ReconcileOptions{Store: cfg, From: l.from, To: l.to,
			Config: testConfig(), Threshold: tc.threshold, Chunk: tc.chunk})
		if err != nil {
			t.Fatal(err)
		}
		if rep.ExceedsThreshold != tc.exceeds {
			t.Errorf("threshold %v: exceeds = %v, want %v (relative difference %v)", tc.threshold, rep.ExceedsThreshold, tc.exceeds, rep.Check.RelativeDifference)
		}
		got := map[string]int64{}
		for _, m := range rep.Check.Mismatches {
			got[strconv.FormatInt(m.Minute.Unix(), 10)+"/"+m.FilterID+"/"+m.AdID] = m.Difference
			if m.Recounted-m.Stored != m.Difference {
				t.Errorf("mismatch %+v: difference is not recounted − stored", m)
			}
		}
		if d := diffResults(reference.Results{Counts: got}, reference.Results{Counts: want}); d != "" {
			t.Errorf("mismatched keys differ from the too-late clicks:\n%s", d)
		}
		if tl := l.truth.Count(clickgen.TooLate); rep.Check.Counts.Difference != tl || rep.Check.Counts.AbsDifference != tl {
			t.Errorf("total difference %d (abs %d), want the %d too-late clicks", rep.Check.Counts.Difference, rep.Check.Counts.AbsDifference, tl)
		}
		for i := 1; i < len(rep.Check.Mismatches); i++ {
			if a, b := rep.Check.Mismatches[i-1].Difference, rep.Check.Mismatches[i].Difference; max(a, -a) < max(b, -b) {
				t.Fatalf("mismatches not ordered by largest difference first: %d before %d", a, b)
			}
		}
		var js bytes.Buffer
		if err := rep.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var back pipelines.Report
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Check.Mismatches) != len(rep.Check.Mismatches) {
			t.Errorf("report JSON does not round-trip: %v", err)
		}
	}

	rep, err := pipelines.Reconcile(ctx, pipelines.ReconcileOptions{Store: cfg, From: l.from, To: l.to,
		Config: testConfig(), Threshold: pipelines.DefaultThreshold, Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repair == nil || len(rep.Repair.Ranges) == 0 {
		t.Fatalf("repair did nothing: %+v", rep.Repair)
	}
	if n := len(rep.Repair.After.Mismatches); n != 0 || rep.ExceedsThreshold {
		t.Errorf("after repair: %d mismatches (%+v), exceeds %v", n, rep.Repair.After.Mismatches[:min(n, 5)], rep.ExceedsThreshold)
	}
	ref := reference.Recount(l.lines, testWindows, testTopN, nil)
	awaitSwitch(cfg)
	// Top lists included up to the longest window − 1 min after the
	// reconciled range: they sum repaired minutes too.
	end := l.to.Add(time.Duration(slices.Max(testWindows)-1) * time.Minute)
	if d := diffResults(served(t, st, l.from, end), inRange(ref, l.from, end)); d != "" {
		t.Errorf("after repair the store differs from the reference recount:\n%s", d)
	}
	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum, 5); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"difference +" + strconv.FormatInt(l.truth.Count(clickgen.TooLate), 10), "after repair: counts", "OK: within"} {
		if !strings.Contains(sum.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, sum.String())
		}
	}
	mfs, err := rep.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "adclick_reconcile_mismatched_keys" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "count" {
					found = true
					if int(m.GetGauge().GetValue()) != rep.Check.Counts.Mismatched {
						t.Errorf("metric mismatched_keys{count} = %v, want %d", m.GetGauge().GetValue(), rep.Check.Counts.Mismatched)
					}
				}
			}
		}
	}
	if !found {
		t.Error("no adclick_reconcile_mismatched_keys{kind=count} metric")
	}
}

// TestReconcileErrors: bad options fail before anything runs.
func TestReconcileErrors(t *testing.T) {
	cfg := pebbleStore(t)
	at := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		o        pipelines.ReconcileOptions
		contains string
	}{
		{"empty range", pipelines.ReconcileOptions{Store: cfg, From: at, To: at, Config: testConfig()}, "empty"},
		{"negative threshold", pipelines.ReconcileOptions{Store: cfg, From: at, To: at.Add(time.Hour), Config: testConfig(), Threshold: -1}, "threshold"},
		{"threshold above 1", pipelines.ReconcileOptions{Store: cfg, From: at, To: at.Add(time.Hour), Config: testConfig(), Threshold: 2}, "threshold"},
		{"chunk not whole minutes", pipelines.ReconcileOptions{Store: cfg, From: at, To: at.Add(time.Hour), Config: testConfig(), Chunk: 90 * time.Second}, "chunk"},
		{"bad store", pipelines.ReconcileOptions{Store: backend.Config{Backend: backend.Cassandra}, From: at, To: at.Add(time.Hour), Config: testConfig()}, "needs hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pipelines.Reconcile(context.Background(), tc.o); err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("Reconcile = %v, want an error containing %q", err, tc.contains)
			}
		})
	}
}
