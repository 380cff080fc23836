package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// envScreenshot, when set to a file path, makes TestAllInOne save a
// screenshot of the live dashboard there (how docs/dashboard.png is made).
const envScreenshot = "ADCLICK_DASHBOARD_SCREENSHOT"

type aioTop struct {
	Minute string `json:"minute"`
	Ads    []struct {
		AdID  string `json:"ad_id"`
		Count int64  `json:"count"`
	} `json:"ads"`
}

// startAllInOne runs `adclick allinone` on dir as `make run` does (smaller
// rate); stop ends it as Ctrl-C does and returns its exit code.
func startAllInOne(t *testing.T, dir string) (base string, stop func() int) {
	t.Helper()
	b := startBackground(t, nil, "allinone", "--data-dir", dir, "--rate", "300", "--partitions", "2")
	return b.base, func() int { return b.stop(t) }
}

// waitTop polls the newest 1-minute top list until ok accepts it.
func waitTop(base string, within time.Duration, ok func(aioTop) bool) (aioTop, bool) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/ads/popular_ads?window_size=1&top_n=3"); err == nil {
			var tp aioTop
			good := res.StatusCode == 200 && json.NewDecoder(res.Body).Decode(&tp) == nil && len(tp.Ads) > 0
			res.Body.Close()
			if good && ok(tp) {
				return tp, true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return aioTop{}, false
}

// TestAllInOne runs `adclick allinone` the way `make run` does, waits for
// live top lists on the API, checks the live pipeline metrics and the
// dashboard in headless Chromium, stops it as Ctrl-C does, and starts it
// again on the same data directory: the stored results are served at once,
// before the new run produced anything, and live data resumes.
func TestAllInOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "allinone")
	base, stop := startAllInOne(t, dir)
	first, ok := waitTop(base, 90*time.Second, func(tp aioTop) bool { return tp.Ads[0].Count > 0 })
	if !ok {
		stop()
		t.Fatal("no top list on the API within 90 s of starting")
	}
	checkLiveMetrics(t, base)
	checkLiveDashboard(t, base)
	if code := stop(); code != 0 {
		t.Fatalf("allinone exited %d after Ctrl-C", code)
	}

	base, stop = startAllInOne(t, dir)
	defer stop()
	// The store outlives the process: what was served is there before the new
	// run has read anything.
	again, ok := waitTop(base, 30*time.Second, func(aioTop) bool { return true })
	if !ok {
		t.Fatal("after a restart the API serves no top list: stored results were lost")
	}
	if again.Minute < first.Minute {
		t.Errorf("after a restart the newest top list is for %s, older than %s before it", again.Minute, first.Minute)
	}
	// And it carries on: a newer minute, or higher counts in the same one.
	if _, ok := waitTop(base, 120*time.Second, func(tp aioTop) bool {
		return tp.Minute > again.Minute || tp.Ads[0].Count > again.Ads[0].Count
	}); !ok {
		t.Error("after a restart the top lists never moved on")
	}
}

// scrape reads base's /metrics: every family by name.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// familySum is a family's value summed over its series (counters and gauges).
func familySum(mfs map[string]*dto.MetricFamily, name string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	var s float64
	for _, m := range mf.GetMetric() {
		s += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return s, true
}

// checkLiveMetrics: the streaming job's own counters reach /metrics with
// real values, next to the writers' lag and the freshness; every adclick
// family follows the naming scheme.
func checkLiveMetrics(t *testing.T, base string) {
	var mfs map[string]*dto.MetricFamily
	deadline := time.Now().Add(60 * time.Second)
	for {
		mfs = scrape(t, base)
		// Too-late and malformed lines are 0.5% of 300/s: a few seconds in.
		n1, _ := familySum(mfs, "adclick_clicks_too_late_total")
		n2, _ := familySum(mfs, "adclick_clicks_rejected_total")
		if n1 > 0 && n2 > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, name := range []string{"adclick_clicks_in_total", "adclick_clicks_counted_total", "adclick_clicks_duplicate_total",
		"adclick_clicks_too_late_total", "adclick_clicks_rejected_total", "adclick_results_written_total",
		"adclick_kafka_records_read_total", "adclick_stream_job_running", "adclick_dbwriter_rows_written_total"} {
		if v, ok := familySum(mfs, name); !ok || v <= 0 {
			t.Errorf("%s = %v (exported: %v): want a live value above 0", name, v, ok)
		}
	}
	// One snapshot of the job's counters: every line read is accounted for.
	var parts [5]float64
	for i, name := range []string{"adclick_clicks_in_total", "adclick_clicks_counted_total", "adclick_clicks_duplicate_total",
		"adclick_clicks_too_late_total", "adclick_clicks_rejected_total"} {
		parts[i], _ = familySum(mfs, name)
	}
	if parts[0] != parts[1]+parts[2]+parts[3]+parts[4] {
		t.Errorf("clicks in %v != counted %v + duplicates %v + too late %v + rejected %v", parts[0], parts[1], parts[2], parts[3], parts[4])
	}
	// The reader's per-partition gauges (2 partitions).
	if mf := mfs["adclick_stream_watermark_lag_seconds"]; len(mf.GetMetric()) != 2 {
		t.Errorf("watermark lag of %d partitions, want 2", len(mf.GetMetric()))
	} else {
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v < 0 || v > 120 {
				t.Errorf("watermark lag %v s: want the job following the clock", v)
			}
		}
	}
	if mf := mfs["adclick_stream_partition_lag_records"]; len(mf.GetMetric()) != 2 {
		t.Errorf("reader lag of %d partitions, want 2", len(mf.GetMetric()))
	}
	if f, ok := familySum(mfs, "adclick_freshness_seconds"); !ok || f < 0 || f > 120 {
		t.Errorf("freshness %v s (exported: %v): want the current minute's data", f, ok)
	}
	groups := map[string]bool{}
	for _, m := range mfs["adclick_kafka_consumer_lag_records"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "group" {
				groups[l.GetValue()] = true
			}
		}
	}
	for _, g := range []string{"adclick-dbwriter-results", "adclick-dbwriter-raw"} {
		if !groups[g] {
			t.Errorf("no consumer lag for group %s (have %v)", g, groups)
		}
	}
	checkNamingScheme(t, mfs)
}

// checkNamingScheme: namespace adclick, _total on counters and only on
// them, a unit suffix on histograms.
func checkNamingScheme(t *testing.T, mfs map[string]*dto.MetricFamily) {
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "adclick_") {
			continue
		}
		counter := mf.GetType() == dto.MetricType_COUNTER
		if counter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %v: _total is for counters only, and every counter has it", name, mf.GetType())
		}
		if mf.GetType() == dto.MetricType_HISTOGRAM && !strings.HasSuffix(name, "_seconds") && !strings.HasSuffix(name, "_bytes") {
			t.Errorf("histogram %s has no unit suffix", name)
		}
	}
}

var reTile = func(id string) *regexp.Regexp {
	return regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`)
}

// checkLiveDashboard loads the dashboard in headless Chromium: the pipeline
// tiles show the running job's numbers (between two scrapes of /metrics
// around the page load), and the default top-list window ends at the
// current minute.
func checkLiveDashboard(t *testing.T, base string) {
	tiles := map[string]string{"m-clicks-in": "adclick_clicks_in_total", "m-rejected": "adclick_clicks_rejected_total",
		"m-too-late": "adclick_clicks_too_late_total", "m-duplicates": "adclick_clicks_duplicate_total"}
	before := scrape(t, base)
	dom := chromium(t, base+"/", "")
	now := time.Now().UTC()
	after := scrape(t, base)
	for id, name := range tiles {
		m := regexp.MustCompile(`id="` + id + `"[^>]*data-count="(\d+)"`).FindStringSubmatch(dom)
		shown := reTile(id).FindStringSubmatch(dom)
		if m == nil || shown == nil || shown[1] == "n/a" {
			t.Errorf("tile #%s shows %q, not a number from the running pipeline", id, shown)
			continue
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		lo, _ := familySum(before, name)
		hi, _ := familySum(after, name)
		if v < lo || v > hi || v == 0 {
			t.Errorf("tile #%s shows %v; /metrics had %v before the page loaded and %v after", id, v, lo, hi)
		}
	}
	shown := reTile("top-minute").FindStringSubmatch(dom)
	cur := now.Truncate(time.Minute)
	ok := false
	for _, m := range []time.Time{cur, cur.Add(-time.Minute)} { // the page may have loaded in the previous minute
		ok = ok || shown != nil && shown[1] == m.Format("2006-01-02 15:04")+" UTC"
	}
	if !ok {
		t.Errorf("the default window ends at %q, want the current minute %s", shown, cur.Format("15:04"))
	}
	if shot := os.Getenv(envScreenshot); shot != "" {
		abs, _ := filepath.Abs(shot)
		chromium(t, base+"/", abs)
		if fi, err := os.Stat(abs); err != nil || fi.Size() < 10000 {
			t.Fatalf("screenshot %s: %v", abs, err)
		}
	}
}

// chromium loads url in headless Chromium (queryapi/testdata/ensure-chromium.sh
// installs it) and returns the DOM after the page's scripts ran; with shot
// set it saves a screenshot there instead.
func chromium(t *testing.T, url, shot string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if bin, err = exec.LookPath("chromium-browser"); err != nil {
			t.Fatal("chromium is not installed: run queryapi/testdata/ensure-chromium.sh (make test does)")
		}
	}
	profile := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile, "--virtual-time-budget=4000"}
	if shot != "" {
		args = append(args, "--window-size=1280,900", "--screenshot="+shot)
	} else {
		args = append(args, "--dump-dom")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium could not run: %v\n%s", err, stderr.String())
	}
	return string(out)
}
