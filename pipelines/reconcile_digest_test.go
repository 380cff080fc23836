package pipelines_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/testing/reference"
)

func TestReconcileDigestPebble(t *testing.T)    { testReconcileDigest(t, pebbleStore(t), 6000) }
func TestReconcileDigestCassandra(t *testing.T) { testReconcileDigest(t, cassandraStore(t), 3000) }

// testReconcileDigest: the live results count one click that is not in the
// raw store in place of one that is — same ad, minute and attributes, so
// every count is right and only the members differ. Reconcile reports that
// minute's keys (and only those) as digest mismatches with a zero count
// difference, fails the verdict, and its repair (a replay) leaves the store
// serving the reference recount's digests.
func testReconcileDigest(t *testing.T, cfg backend.Config, n int) {
	ctx := context.Background()
	l := genLog(t, n)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)

	// The swapped click: the first valid one whose id appears once.
	ids := map[string]int{}
	var p click.Parser
	for _, line := range l.lines {
		if c, err := p.Parse(line); err == nil {
			ids[c.EventID]++
		}
	}
	var victim click.Click
	live := make([][]byte, 0, len(l.lines))
	for _, line := range l.lines {
		c, err := p.Parse(line)
		if err == nil && victim.EventID == "" && ids[c.EventID] == 1 {
			victim = c
			line = bytes.Replace(line, []byte(strconv.Quote(c.EventID)), []byte(strconv.Quote(c.EventID+"-not-in-raw")), 1)
			if sw, err := p.Parse(line); err != nil || sw.EventID != c.EventID+"-not-in-raw" || sw.AdID != c.AdID || sw.Minute() != c.Minute() {
				t.Fatalf("swapping the event id of %s failed: %v", line, err)
			}
		}
		live = append(live, line)
	}
	if victim.EventID == "" {
		t.Fatal("no click to swap")
	}
	writeLive(t, cfg, live, testConfig())

	rep, err := pipelines.Reconcile(ctx, pipelines.ReconcileOptions{Store: cfg, From: l.from, To: l.to,
		Config: testConfig(), Threshold: pipelines.DefaultThreshold})
	if err != nil {
		t.Fatal(err)
	}
	m := strconv.FormatInt(victim.Minute(), 10)
	want := map[string]int64{m + "//" + victim.AdID: 0}
	for _, f := range [][2]string{{"country", victim.Country}, {"device", victim.Device}, {"format", victim.AdFormat}} {
		if f[1] != "" {
			want[m+"/"+f[0]+":"+f[1]+"/"+victim.AdID] = 0
		}
	}
	got := map[string]int64{}
	for _, x := range rep.Check.Mismatches {
		got[strconv.FormatInt(x.Minute.Unix(), 10)+"/"+x.FilterID+"/"+x.AdID] = x.Difference
		if !x.DigestMismatch || x.RecountedDigest == "" || x.StoredDigest == "" || x.RecountedDigest == x.StoredDigest {
			t.Errorf("mismatch %+v is not a digest mismatch with both digests", x)
		}
	}
	if d := diffResults(reference.Results{Counts: got}, reference.Results{Counts: want}); d != "" {
		t.Errorf("mismatched keys differ from the swapped click's:\n%s", d)
	}
	if rep.Check.Counts.AbsDifference != 0 || rep.Check.Filtered.AbsDifference != 0 {
		t.Errorf("count differences %d, %d: the swap should keep every count", rep.Check.Counts.AbsDifference, rep.Check.Filtered.AbsDifference)
	}
	if rep.Check.Counts.DigestMismatched != 1 || rep.Check.Counts.DigestUnknown != 0 || !rep.ExceedsThreshold {
		t.Errorf("digest mismatched %d (want 1), unknown %d (want 0), exceeds %v (want true)",
			rep.Check.Counts.DigestMismatched, rep.Check.Counts.DigestUnknown, rep.ExceedsThreshold)
	}
	if len(rep.Check.AffectedMinutes) != 1 || rep.Check.AffectedMinutes[0].From.Unix() != victim.Minute() {
		t.Errorf("affected minutes %v, want only %s", rep.Check.AffectedMinutes, time.Unix(victim.Minute(), 0).UTC())
	}
	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum, 5); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "digest differs") || !strings.Contains(sum.String(), "FAIL") {
		t.Errorf("summary does not name the digest mismatch:\n%s", sum.String())
	}

	rep, err = pipelines.Reconcile(ctx, pipelines.ReconcileOptions{Store: cfg, From: l.from, To: l.to,
		Config: testConfig(), Threshold: pipelines.DefaultThreshold, Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repair == nil || len(rep.Repair.After.Mismatches) != 0 || rep.ExceedsThreshold {
		t.Fatalf("repair left %+v, exceeds %v", rep.Repair, rep.ExceedsThreshold)
	}
	awaitSwitch(cfg)
	// Replay's digests, as stored and served, are the reference's.
	ref := reference.Recount(l.lines, testWindows, testTopN, nil)
	reference.CompareDigests(t, served(t, st, l.from, l.to), ref)
}
