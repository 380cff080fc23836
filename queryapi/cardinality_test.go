package queryapi

import (
	"fmt"
	"net/http"
	"testing"
)

// TestMetricSeriesBounded: whatever methods and paths clients invent, the
// HTTP metrics keep a fixed set of label values. Each invented method once
// became a label value (500 of them grew /metrics from 64 KB to 1.3 MB).
func TestMetricSeriesBounded(t *testing.T) {
	ts := newTestServer(t, nil)
	invent := func(from, to int) {
		for i := from; i < to; i++ {
			method := fmt.Sprintf("XQWE%d", i)
			ts.do(t, method, fmt.Sprintf("/nope/%d", i), "")
			ts.do(t, method, countURL, readToken)
			ts.do(t, http.MethodGet, fmt.Sprintf("/made/up/%d?x=%d", i, i), "")
			ts.do(t, http.MethodDelete, fmt.Sprintf("/ads/ad%d/aggregated_count", i), readToken)
		}
	}
	invent(0, 5)
	base := seriesCount(t, ts.reg, "adclick_http_requests_total")
	invent(5, 500)
	if n := seriesCount(t, ts.reg, "adclick_http_requests_total"); n != base {
		t.Errorf("request series grew from %d to %d with invented methods and paths", base, n)
	}
	if n := seriesCount(t, ts.reg, "adclick_http_request_duration_seconds"); n != base {
		t.Errorf("%d latency series, want %d", n, base)
	}
	for _, l := range []map[string]string{
		{"route": "unmatched", "method": "other", "code": "405"},
		{"route": "unmatched", "method": "DELETE", "code": "405"},
		{"route": "unmatched", "method": "GET", "code": "404"},
	} {
		if got := metricValue(t, ts.reg, "adclick_http_requests_total", l); got == 0 {
			t.Errorf("no requests counted under %v", l)
		}
	}
}

// TestHeadCountedUnderItsRoute: HEAD is answered by the GET route and is
// counted under it, not as "unmatched".
func TestHeadCountedUnderItsRoute(t *testing.T) {
	ts := newTestServer(t, nil)
	if r := ts.do(t, http.MethodHead, countURL, readToken); r.code != http.StatusOK {
		t.Fatalf("HEAD status %d", r.code)
	}
	if r := ts.do(t, http.MethodHead, "/healthz", ""); r.code != http.StatusOK {
		t.Fatalf("HEAD /healthz status %d", r.code)
	}
	for _, route := range []string{"/ads/{ad_id}/aggregated_count", "/healthz"} {
		l := map[string]string{"route": route, "method": "HEAD", "code": "200"}
		if got := metricValue(t, ts.reg, "adclick_http_requests_total", l); got != 1 {
			t.Errorf("requests %v = %v, want 1", l, got)
		}
	}
	if got := metricValue(t, ts.reg, "adclick_http_requests_total", map[string]string{"route": "unmatched", "method": "HEAD", "code": "200"}); got != 0 {
		t.Errorf("%v HEAD requests counted as unmatched", got)
	}
}
