package queryapi

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/queryapi/internal/demodata"
	"github.com/adclick/adclick/queryapi/internal/memstore"
)

// chromiumPath finds the browser, or fails the test: the dashboard test is
// part of `make test` and must not pass without having run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run queryapi/testdata/ensure-chromium.sh (make test does)")
	return ""
}

// demoStart is 2024-01-01T09:00:00Z; the demo data spans 90 minutes.
const demoStart = int64(1704099600)

// startDemoServer serves the demo data from st on 127.0.0.1 with token
// auth, as serve does: no pipeline runs in the process, so its /metrics has
// no pipeline counters (the all-in-one's test checks those live).
func startDemoServer(t *testing.T, st store.AggregateStore, reader Reader, edit ...func(*Config)) (base string, reg *prometheus.Registry) {
	t.Helper()
	recs := demodata.Records(demodata.Spec{Start: demoStart, Minutes: 90, Ads: 12, WindowSizes: DefaultWindowSizes, TopN: 100})
	if err := st.Upsert(context.Background(), store.LiveGeneration, recs); err != nil {
		t.Fatal(err)
	}
	reg = prometheus.NewRegistry()
	cfg := Config{
		Store:      reader,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Registerer: reg,
		Tokens:     testTokens(),
	}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), reg
}

func apiGet(t *testing.T, base, path string, out any) {
	t.Helper()
	apiGetAs(t, base, path, readToken, out)
}

// apiGetAs asks the API with token ("" sends none).
func apiGetAs(t *testing.T, base, path, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// runChromium loads url headless and returns the DOM after the page's
// scripts ran. (docs/dashboard.png is taken of the live all-in-one:
// TestAllInOne in cmd/adclick.)
func runChromium(t *testing.T, url string) string {
	t.Helper()
	bin := chromiumPath(t)
	profile := t.TempDir()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + profile, "--virtual-time-budget=4000",
	}
	args = append(args, "--dump-dom")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium could not run: %v\n%s", err, tail(stderr.String(), 2000))
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

var (
	reRow   = regexp.MustCompile(`<tr data-ad-id="([^"]*)" data-count="(\d+)"[^>]*>`)
	reBar   = regexp.MustCompile(`<rect [^>]*data-minute="([^"]+)" data-count="(\d+)"`)
	reAttrN = func(id string) *regexp.Regexp {
		return regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*data-count="(\d+)"[^>]*>([^<]*)<`)
	}
)

func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestDashboardInChromium loads the dashboard in headless Chromium against
// a live server and checks that the page shows what the API returns: the top
// list, the per-minute chart and its total, and that the pipeline tiles
// say n/a where no pipeline runs.
func TestDashboardInChromium(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			base, _ := startDemoServer(t, st, st)
			checkDashboard(t, base)
		})
	}
}

// TestDashboardInsecureMode: in the all-in-one's insecure mode the page
// shows data without any token.
func TestDashboardInsecureMode(t *testing.T) {
	st := memstore.New()
	base, _ := startDemoServer(t, st, st, func(c *Config) { c.Tokens = nil; c.Insecure = true })
	dom := runChromium(t, base+"/#window=15")
	var top struct {
		Ads []struct {
			AdID  string `json:"ad_id"`
			Count int64  `json:"count"`
		} `json:"ads"`
	}
	apiGetAs(t, base, "/ads/popular_ads?window_size=15&top_n=10", "", &top)
	rows := reRow.FindAllStringSubmatch(dom, -1)
	if !strings.Contains(dom, `data-state="ok"`) || len(rows) != len(top.Ads) || len(rows) == 0 {
		t.Fatalf("insecure mode: %d rows (API %d), status %s", len(rows), len(top.Ads), statusOf(dom))
	}
	for i, r := range rows {
		if r[1] != top.Ads[i].AdID || r[2] != strconv.FormatInt(top.Ads[i].Count, 10) {
			t.Errorf("row %d: page %s=%s, API %+v", i, r[1], r[2], top.Ads[i])
		}
	}
}

type backend struct {
	name string
	open func(t testing.TB) storeUnderTest
}

// storeUnderTest is what the browser test needs of a backend.
type storeUnderTest interface {
	store.AggregateStore
	Reader
}

func memBackend() backend {
	return backend{"memstore", func(t testing.TB) storeUnderTest { return memstore.New() }}
}

func checkDashboard(t *testing.T, base string) {
	const filter = "country:US"
	dom := runChromium(t, base+"/#token="+readToken+"&window=5&filter="+url.QueryEscape(filter))
	if !strings.Contains(dom, `data-state="ok"`) {
		t.Fatalf("the page did not load its data; status: %s", statusOf(dom))
	}

	// Top list: the same ads, order and counts as the API.
	var top struct {
		Minute string `json:"minute"`
		Ads    []struct {
			AdID  string `json:"ad_id"`
			Count int64  `json:"count"`
		} `json:"ads"`
	}
	apiGet(t, base, "/ads/popular_ads?window_size=5&top_n=10", &top)
	if len(top.Ads) != 10 {
		t.Fatalf("API top list has %d ads, want 10", len(top.Ads))
	}
	rows := reRow.FindAllStringSubmatch(dom, -1)
	if len(rows) != len(top.Ads) {
		t.Fatalf("page shows %d top rows, API returns %d", len(rows), len(top.Ads))
	}
	var topSum int64
	for i, r := range rows {
		if html.UnescapeString(r[1]) != top.Ads[i].AdID || r[2] != strconv.FormatInt(top.Ads[i].Count, 10) {
			t.Errorf("row %d: page %s=%s, API %s=%d", i, r[1], r[2], top.Ads[i].AdID, top.Ads[i].Count)
		}
		if !strings.Contains(dom, `<td class="num count">`+group(top.Ads[i].Count)+`</td>`) {
			t.Errorf("count %s of %s is not displayed", group(top.Ads[i].Count), top.Ads[i].AdID)
		}
		topSum += top.Ads[i].Count
	}
	if want := strings.Replace(strings.Replace(top.Minute, "T", " ", 1), ":00Z", " UTC", 1); !strings.Contains(dom, `<span id="top-minute">`+want+`</span>`) {
		t.Errorf("top minute %q not shown", want)
	}
	checkNumber(t, dom, "top-total", topSum)

	// Chart: 30 one-minute bars of the top ad with the filter, ending at the
	// latest minute, each equal to the API's count; the total is the API's
	// count over the whole range.
	// The chart ends with the newest minute that has clicks: the latest
	// 1-minute top list.
	var last struct {
		Minute string `json:"minute"`
	}
	apiGet(t, base, "/ads/popular_ads?window_size=1&top_n=1", &last)
	latest, err := time.Parse(time.RFC3339, last.Minute)
	if err != nil {
		t.Fatal(err)
	}
	end := latest.Add(time.Minute)
	ad := top.Ads[0].AdID
	bars := reBar.FindAllStringSubmatch(dom, -1)
	if len(bars) != 30 {
		t.Fatalf("chart has %d bars, want 30", len(bars))
	}
	for i, b := range bars {
		from := end.Add(time.Duration(i-30) * time.Minute)
		if b[1] != from.UTC().Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("bar %d is minute %s, want %s", i, b[1], from)
		}
		var c struct{ Count int64 }
		apiGet(t, base, fmt.Sprintf("/ads/%s/aggregated_count?from=%d&to=%d&filter_id=%s", url.PathEscape(ad), from.Unix(), from.Unix()+60, filter), &c)
		if b[2] != strconv.FormatInt(c.Count, 10) {
			t.Errorf("bar %d: page %s, API %d", i, b[2], c.Count)
		}
	}
	var whole struct{ Count int64 }
	apiGet(t, base, fmt.Sprintf("/ads/%s/aggregated_count?from=%d&to=%d&filter_id=%s", url.PathEscape(ad), end.Unix()-30*60, end.Unix(), filter), &whole)
	if whole.Count == 0 {
		t.Fatal("the chart range has no clicks: the check would prove nothing")
	}
	checkNumber(t, dom, "chart-total", whole.Count)
	if !strings.Contains(dom, `<b id="chart-ad">`+html.EscapeString(ad)+`</b>`) {
		t.Errorf("chart ad %s not shown", ad)
	}

	// No pipeline runs in this process: the pipeline tiles say so rather
	// than show a number (TestAllInOne checks them with a live pipeline).
	for _, id := range []string{"m-clicks-in", "m-rejected", "m-too-late", "m-duplicates"} {
		if !regexp.MustCompile(`id="` + id + `"[^>]*>n/a<`).MatchString(dom) {
			t.Errorf("#%s does not say n/a without a pipeline", id)
		}
	}

	// Without a token the page must say so rather than show data.
	dom = runChromium(t, base+"/#window=5")
	if !strings.Contains(dom, `data-state="error"`) || !strings.Contains(dom, "token required") || reRow.MatchString(dom) {
		t.Errorf("without a token the page shows: %s", statusOf(dom))
	}
}

func checkNumber(t *testing.T, dom, id string, want int64) {
	t.Helper()
	m := reAttrN(id).FindStringSubmatch(dom)
	if m == nil {
		t.Errorf("#%s has no number in the page", id)
		return
	}
	if m[1] != strconv.FormatInt(want, 10) || m[2] != group(want) {
		t.Errorf("#%s shows %s (data %s), want %s", id, m[2], m[1], group(want))
	}
}

func statusOf(dom string) string {
	if i := strings.Index(dom, `id="status"`); i >= 0 {
		return tail(dom[:min(len(dom), i+200)], 260)
	}
	return tail(dom, 500)
}
