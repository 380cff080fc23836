package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
	"github.com/adclick/adclick/transforms"
)

func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

const token = "e2e-read-token-0123456789"

func TestQueryAPIOnPipelineResults(t *testing.T) {
	backends := []struct {
		name string
		cfg  func(t *testing.T) backend.Config
	}{
		{"pebble", func(t *testing.T) backend.Config {
			return backend.Config{Backend: backend.Pebble, Path: t.TempDir()}
		}},
		{"cassandra", func(t *testing.T) backend.Config {
			hosts, ks := testenv.CassandraKeyspace(t, "adclick_e2e")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
				t.Fatal(err)
			}
			return backend.Config{Backend: backend.Cassandra, Hosts: hosts, Keyspace: ks}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testBackend(t, b.cfg(t)) })
	}
}

func testBackend(t *testing.T, scfg backend.Config) {
	// About 12 minutes of traffic with duplicates, malformed and late lines.
	g, err := clickgen.New(clickgen.Config{Seed: 11, Ads: 40, Start: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC),
		EventRate: 8, DupShare: 0.1, MalformedShare: 0.05, LateShare: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	lines := make([][]byte, 6000)
	for i := range lines {
		lines[i] = append([]byte(nil), g.Next().Data...)
	}
	var batches []click.Lines
	for i := 0; i < len(lines); i += 500 {
		batches = append(batches, click.Lines{Lines: lines[i:min(i+500, len(lines))], Watermark: click.NoWatermark})
	}
	cfg := transforms.DefaultConfig()
	p, s := beam.NewPipelineWithRoot()
	out, err := transforms.Aggregate(s, beam.CreateList(s, batches), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, recs := range out.RecordParts {
		if err := storeio.WriteAggregates(s, scfg, store.LiveGeneration, recs, storeio.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ptest.Run(p); err != nil {
		t.Fatalf("pipeline: %v", err)
	}

	st, err := backend.Open(context.Background(), scfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tokens, _ := queryapi.ParseTokens("e2e:read:" + token)
	srv, err := queryapi.New(queryapi.Config{Store: st, Tokens: tokens, Registerer: prometheus.NewRegistry(), RateLimit: -1,
		WindowSizes: cfg.WindowSizes, TopN: cfg.TopN})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, nil)
	if len(want.Counts) == 0 || want.Dups == 0 || want.Rejected == 0 {
		t.Fatalf("the input lacks counts, duplicates or rejects: %+v", want.Valid)
	}

	// Totals per ad and per (ad, filter) over the whole range, and a few
	// single minutes, against the reference.
	first, last := int64(1<<62), int64(0)
	adTotal := map[string]int64{}
	perMinute := map[string]int64{}
	for k, n := range want.Counts {
		m, ad := splitKey(k)
		first, last = min(first, m), max(last, m)
		adTotal[ad] += n
		perMinute[k] = n
	}
	filtTotal := map[[2]string]int64{}
	for k, n := range want.Filtered {
		_, rest := splitKey(k)
		f, ad, _ := strings.Cut(rest, "/")
		// FilterIDs hold one colon; ad ids from clickgen hold no slash.
		filtTotal[[2]string{ad, f}] += n
	}
	to := last + 60
	for ad, n := range adTotal {
		if got := count(t, hs.URL, ad, "", first, to); got != n {
			t.Errorf("%s [%d, %d): API %d, reference %d", ad, first, to, got, n)
		}
	}
	if len(filtTotal) < 20 {
		t.Fatalf("only %d filtered series: the filter check would be thin", len(filtTotal))
	}
	for k, n := range filtTotal {
		if got := count(t, hs.URL, k[0], k[1], first, to); got != n {
			t.Errorf("%s %s: API %d, reference %d", k[0], k[1], got, n)
		}
	}
	checked := 0
	for k, n := range perMinute {
		if checked++; checked > 50 {
			break
		}
		m, ad := splitKey(k)
		if got := count(t, hs.URL, ad, "", m, m+60); got != n {
			t.Errorf("%s minute %d: API %d, reference %d", ad, m, got, n)
		}
	}

	// Every top list the reference defines, and the latest per window.
	latest := map[int]int64{}
	for k, ads := range want.Top {
		ws, ms, _ := strings.Cut(k, "/")
		w, _ := strconv.Atoi(ws)
		m, _ := strconv.ParseInt(ms, 10, 64)
		latest[w] = max(latest[w], m)
		got := popular(t, hs.URL, fmt.Sprintf("window_size=%d&minute=%d", w, m))
		if !sameAds(got.Ads, ads) {
			t.Errorf("top %s: API %v, reference %v", k, got.Ads, ads)
		}
	}
	t.Logf("checked %d ad totals, %d filtered totals, %d minutes, %d top lists (%d valid, %d duplicate, %d rejected lines)",
		len(adTotal), len(filtTotal), min(50, len(perMinute)), len(want.Top), want.Valid, want.Dups, want.Rejected)
	// Without a minute, popular_ads answers the window that ends at the
	// newest minute with data (never one that ends later): the newest data
	// minute is the 1-minute window's latest end.
	newest := latest[1]
	if newest == 0 {
		t.Fatal("the reference has no 1-minute list: the default-window check needs window size 1")
	}
	for _, w := range cfg.WindowSizes {
		got := popular(t, hs.URL, fmt.Sprintf("window_size=%d&top_n=3", w))
		if got.Minute != result.FormatMinute(newest) {
			t.Errorf("window %d: default minute %s, want the newest data minute %s", w, got.Minute, result.FormatMinute(newest))
		}
		if ref := want.Top[strconv.Itoa(w)+"/"+strconv.FormatInt(newest, 10)]; !sameAds(got.Ads, ref[:min(3, len(ref))]) {
			t.Errorf("window %d latest top 3: API %v, reference %v", w, got.Ads, ref)
		}
	}
}

func splitKey(k string) (int64, string) {
	ms, rest, _ := strings.Cut(k, "/")
	m, _ := strconv.ParseInt(ms, 10, 64)
	return m, rest
}

func get(t *testing.T, u string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, base, ad, filter string, from, to int64) int64 {
	t.Helper()
	u := fmt.Sprintf("%s/ads/%s/aggregated_count?from=%d&to=%d", base, url.PathEscape(ad), from, to)
	if filter != "" {
		u += "&filter_id=" + url.QueryEscape(filter)
	}
	var r struct{ Count int64 }
	get(t, u, &r)
	return r.Count
}

type popularAnswer struct {
	Minute string           `json:"minute"`
	Ads    []result.AdCount `json:"ads"`
}

func popular(t *testing.T, base, q string) popularAnswer {
	t.Helper()
	var r popularAnswer
	get(t, base+"/ads/popular_ads?"+q, &r)
	return r
}

func sameAds(a, b []result.AdCount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return sort.SliceIsSorted(a, func(i, j int) bool { return result.Less(a[i], a[j]) })
}
