package queryapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// TestCountWithDigest: ?with_digest=true returns, beside the count, the sum
// of the minutes' stored digests on both real backends; null when a minute
// has none; no digest field without the parameter; 400 for a bad value; 501
// on a store that keeps no digests (the test fake).
func TestCountWithDigest(t *testing.T) {
	d1 := result.Digest{Hi: 1 << 63, Lo: ^uint64(0), Known: true}
	d2 := result.Digest{Hi: 1 << 63, Lo: 2, Known: true}
	for _, b := range []backend{pebbleBackend(), cassandraBackend()} {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			ts := newTestServerOn(t, st, nil)
			recs := []result.Record{
				{Count: &result.Count{AdID: "dg", Minute: t0, Count: 2, Digest: d1}},
				{Count: &result.Count{AdID: "dg", Minute: t0 + 60, Count: 3, Digest: d2}},
				{Filtered: &result.FilteredCount{AdID: "dg", FilterID: "country:US", Minute: t0, Count: 1, Digest: d2}},
				{Count: &result.Count{AdID: "dg", Minute: t0 + 120, Count: 4}}, // stored without a digest
			}
			if err := st.Upsert(context.Background(), store.LiveGeneration, recs); err != nil {
				t.Fatal(err)
			}
			get := func(q string) map[string]any {
				t.Helper()
				r := ts.do(t, http.MethodGet, "/ads/dg/aggregated_count?from="+fmt.Sprint(t0)+"&"+q, readToken)
				if r.code != http.StatusOK {
					t.Fatalf("%s: %d %s", q, r.code, r.body)
				}
				return r.json(t)
			}
			m := get("to=" + fmt.Sprint(t0+120) + "&with_digest=true")
			if m["count"] != 5.0 || m["digest"] != d1.Add(d2).String() {
				t.Errorf("two minutes: %v, want count 5 and digest %s", m, d1.Add(d2))
			}
			m = get("to=" + fmt.Sprint(t0+60) + "&filter_id=country:US&with_digest=true")
			if m["count"] != 1.0 || m["digest"] != d2.String() {
				t.Errorf("filtered: %v, want count 1 and digest %s", m, d2)
			}
			m = get("to=" + fmt.Sprint(t0+180) + "&with_digest=true")
			if v, ok := m["digest"]; m["count"] != 9.0 || !ok || v != nil {
				t.Errorf("with a minute stored without a digest: %v, want count 9 and digest null", m)
			}
			for _, q := range []string{"", "&with_digest=false"} {
				if m = get("to=" + fmt.Sprint(t0+120) + q); m["count"] != 5.0 || m["digest"] != nil {
					t.Errorf("without with_digest (%q): %v", q, m)
				}
			}
			r := ts.do(t, http.MethodGet, "/ads/dg/aggregated_count?from="+fmt.Sprint(t0)+"&to="+fmt.Sprint(t0+60)+"&with_digest=yes", readToken)
			if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "with_digest") {
				t.Errorf("with_digest=yes: %d %s, want 400 naming the parameter", r.code, r.body)
			}
		})
	}
	ts := newTestServer(t, nil)
	r := ts.do(t, http.MethodGet, "/ads/ad1/aggregated_count?from="+fmt.Sprint(t0)+"&to="+fmt.Sprint(t0+60)+"&with_digest=true", readToken)
	if r.code != http.StatusNotImplemented {
		t.Errorf("with_digest on a store without digests: %d %s, want 501", r.code, r.body)
	}
}
