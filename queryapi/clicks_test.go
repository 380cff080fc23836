package queryapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/services/explain"
)

// clicksServer is a server whose Clicks hook explains a Pebble store holding
// one minute (t0) of ad "big": n unique clicks and dups re-deliveries of
// the first of them one second later, counted by a replay generation.
func clicksServer(t *testing.T, n, dups int) *testServer {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	digest := result.Digest{Known: true}
	batch := make([]click.Click, 0, 10000)
	flush := func() {
		if err := st.WriteRaw(ctx, batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		id := fmt.Sprintf("ev-%06d", i)
		digest = digest.Add(result.EventDigest(id))
		batch = append(batch, click.Click{EventID: id, AdID: "big", Time: t0*1000 + int64(i%50000), Country: "US"})
		if i < dups {
			batch = append(batch, click.Click{EventID: id, AdID: "big", Time: t0*1000 + 50000 + int64(i), Country: "US"})
		}
		if len(batch) >= 9000 {
			flush()
		}
	}
	flush()
	g, err := st.NewGeneration(ctx, t0, t0+60, t0+60)
	if err != nil {
		t.Fatal(err)
	}
	rec := result.Record{Count: &result.Count{AdID: "big", Minute: t0, Count: int64(n), Digest: digest}}
	if err := st.Upsert(ctx, g, []result.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitGeneration(ctx, g); err != nil {
		t.Fatal(err)
	}
	return newTestServerOn(t, st, func(c *Config) { c.Clicks = explain.Service{Store: st} })
}

type clicksPageBody struct {
	Clicks  []explain.ClickJSON  `json:"clicks"`
	Minutes []explain.MinuteJSON `json:"minutes"`
	Page    pageSummary          `json:"page"`
	Next    string               `json:"next_page_token"`
	Total   *explain.TotalJSON   `json:"total"`
}

// TestClicksPagination pages through one minute with 100k clicks of one ad
// (and 1,000 duplicates): the pages together list every click exactly once
// as counted, each duplicate once as not counted, only the last page has the
// total (a match), and the heap does not grow with the listing.
func TestClicksPagination(t *testing.T) {
	const n, dups = 100_000, 1_000
	ts := clicksServer(t, n, dups)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak uint64
	seen := make(map[string]bool, n)
	var notCounted, pages int
	token := ""
	for {
		target := "/admin/ads/big/clicks?from=2024-01-01T10:00&to=2024-01-01T10:05&limit=10000"
		if token != "" {
			target += "&page_token=" + url.QueryEscape(token)
		}
		r := ts.do(t, "GET", target, adminToken)
		if r.code != 200 {
			t.Fatalf("page %d: %d %s", pages, r.code, r.body)
		}
		var p clicksPageBody
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		if len(p.Clicks) > 10000 || p.Page.Clicks != len(p.Clicks) {
			t.Fatalf("page %d: %d clicks, summary %+v", pages, len(p.Clicks), p.Page)
		}
		for _, c := range p.Clicks {
			switch {
			case c.Status == explain.NotCounted && c.Reason == "duplicate of "+c.EventID:
				notCounted++
			case c.Status != explain.Counted:
				t.Fatalf("row %+v", c)
			case seen[c.EventID]:
				t.Fatalf("page %d lists %s again", pages, c.EventID)
			default:
				seen[c.EventID] = true
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		if p.Next == "" {
			if p.Total == nil || p.Total.Verdict != "match" || p.Total.Count != n || p.Total.StoredCount != n {
				t.Fatalf("last page total %+v", p.Total)
			}
			break
		}
		if p.Total != nil {
			t.Fatalf("page %d has a total and a next page", pages)
		}
		token = p.Next
	}
	for i := range n {
		if id := fmt.Sprintf("ev-%06d", i); !seen[id] {
			t.Fatalf("%s is on no page", id)
		}
	}
	if notCounted != dups || pages != (n+dups+9999)/10000 {
		t.Errorf("%d duplicates over %d pages; want %d over %d", notCounted, pages, dups, (n+dups+9999)/10000)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Loose bounds: a page, one minute's clicks and the recorder's copy of
	// the body are in use at the peak; nothing of the listing stays.
	t.Logf("heap in use: before %d MiB, peak %d MiB, after %d MiB", before.HeapInuse>>20, peak>>20, after.HeapInuse>>20)
	if peak > before.HeapInuse+256<<20 || after.HeapInuse > before.HeapInuse+32<<20 {
		t.Errorf("heap in use: before %d MiB, peak %d MiB, after %d MiB", before.HeapInuse>>20, peak>>20, after.HeapInuse>>20)
	}
}

// TestClicksBadInput: every malformed request is a 400 JSON error, before
// anything is read.
func TestClicksBadInput(t *testing.T) {
	ts := clicksServer(t, 10, 0)
	tok := func(s string) string { return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(s))) }
	base := "/admin/ads/big/clicks?from=2024-01-01T10:00&to=2024-01-01T10:05"
	for _, target := range []string{
		"/admin/ads/big/clicks?from=2024-01-01T10:05&to=2024-01-01T10:00",
		"/admin/ads/big/clicks?from=2024-01-01T10:00:30Z&to=2024-01-01T10:05",
		"/admin/ads/big/clicks?from=2024-01-01T10:00&to=2024-01-02T10:01",
		"/admin/ads/big/clicks?to=2024-01-01T10:05",
		base + "&filter_id=colour:red",
		base + "&filter_id=country:",
		base + "&limit=0",
		base + "&limit=10001",
		base + "&limit=ten",
		base + "&page_token=%21%21",
		base + "&page_token=" + tok("v1.1704103200"),
		base + "&page_token=" + tok("v1.1704103500.0"), // the range's end
		base + "&page_token=" + tok("v1.1704103230.0"), // not a minute
		base + "&page_token=" + tok("v2.1704103200.0"),
		base + "&page_token=" + tok("v1.1704103200.-1"),
		base + "&unknown=1",
	} {
		r := ts.do(t, "GET", target, adminToken)
		if r.code != 400 || r.json(t)["error"] != codeInvalid {
			t.Errorf("%s: %d %s; want 400 %s", target, r.code, r.body, codeInvalid)
		}
	}
	r := ts.do(t, "GET", base+"&filter_id=country:US&limit=3", adminToken)
	var p clicksPageBody
	if err := json.Unmarshal(r.body, &p); r.code != 200 || err != nil || len(p.Clicks) != 3 || p.Next == "" {
		t.Fatalf("first page of 3: %d %v %s", r.code, err, r.body)
	}
}

// TestClicksAuth: the endpoint is admin-only; without the hook it is 501.
func TestClicksAuth(t *testing.T) {
	target := "/admin/ads/big/clicks?from=2024-01-01T10:00&to=2024-01-01T10:05"
	ts := clicksServer(t, 10, 0)
	for _, tc := range []struct {
		token string
		code  int
	}{{"", 401}, {readToken, 403}, {adminToken, 200}} {
		if r := ts.do(t, "GET", target, tc.token); r.code != tc.code {
			t.Errorf("token %q: %d, want %d: %s", tc.token, r.code, tc.code, r.body)
		}
	}
	if r := newTestServer(t, nil).do(t, "GET", target, adminToken); r.code != 501 {
		t.Errorf("without the hook: %d, want 501", r.code)
	}
}
