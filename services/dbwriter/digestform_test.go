package dbwriter

import (
	"context"
	"maps"
	"testing"

	"github.com/adclick/adclick/domain/result"
)

// TestDigestFormsMidTopic: a results topic written first by a job of before
// the compact digest form (hex, AppendJSON) and then by one of after
// (AppendTopicJSON) — an upgrade mid-topic — is stored with every digest as
// the job computed it, in both orders and for counts and filtered counts
// alike, and the larger count's digest wins across the two forms.
func TestDigestFormsMidTopic(t *testing.T) {
	brokers, ps := resultsFixture(t, 2)
	const m = 1704103260
	digest := func(s string) result.Digest { return result.EventDigest(s) }
	type pane struct {
		rec     result.Record
		compact bool
	}
	count := func(ad string, n int64, d string, compact bool) pane {
		return pane{result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: n, Digest: digest(d)}}, compact}
	}
	filtered := func(ad string, n int64, d string, compact bool) pane {
		return pane{result.Record{Filtered: &result.FilteredCount{AdID: ad, FilterID: "country:US", Minute: m, Count: n, Digest: digest(d)}}, compact}
	}
	panes := []pane{
		count("old-then-new", 1, "a", false), count("old-then-new", 2, "a+b", true),
		count("new-then-old", 1, "c", true), count("new-then-old", 2, "c+d", false), // a replay by an older job
		filtered("old-then-new", 1, "e", false), filtered("old-then-new", 3, "e+f+g", true),
		count("old-only", 5, "h", false), count("new-only", 6, "i", true),
	}
	want := map[string]result.Digest{
		"c/old-then-new": digest("a+b"), "c/new-then-old": digest("c+d"),
		"f/old-then-new": digest("e+f+g"), "c/old-only": digest("h"), "c/new-only": digest("i"),
	}
	var kvs [][2]string
	for _, p := range panes {
		v := p.rec.AppendJSON(nil)
		if p.compact {
			v = p.rec.AppendTopicJSON(nil)
		}
		kvs = append(kvs, [2]string{p.rec.Key(), string(v)})
	}
	produce(t, brokers, "results", kvs)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Brokers: brokers, Topic: "results", Group: "w", Kind: Results}, ps) }()
	stored := func() map[string]result.Digest {
		got := map[string]result.Digest{}
		err := ps.ScanCounts(context.Background(), m, m+60, func(r result.Record) error {
			switch {
			case r.Count != nil:
				got["c/"+r.Count.AdID] = r.Count.Digest
			case r.Filtered != nil:
				got["f/"+r.Filtered.AdID] = r.Filtered.Digest
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitFor(t, "every digest stored as the job computed it", func() bool { return maps.Equal(stored(), want) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
