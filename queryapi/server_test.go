package queryapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func TestAggregatedCount(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { testAggregatedCount(t, newTestServerOn(t, b.open(t), nil)) })
	}
}

func testAggregatedCount(t *testing.T, ts *testServer) {
	long := strings.Repeat("x", 257)
	max := strings.Repeat("x", 256)
	tests := []struct {
		name   string
		target string
		code   int
		count  int64  // when code is 200
		errTag string // when code is not 200
		filter string // expected filter_id in the answer
	}{
		{"short form", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03", 200, 5 + 7 + 11, "", ""},
		{"epoch seconds", "/ads/ad1/aggregated_count?from=1704103200&to=1704103380", 200, 5 + 7 + 11, "", ""},
		{"rfc3339 Z", "/ads/ad1/aggregated_count?from=2024-01-01T10:00:00Z&to=2024-01-01T10:03:00Z", 200, 23, "", ""},
		{"rfc3339 offset escaped", "/ads/ad1/aggregated_count?from=2024-01-01T11:00:00%2B01:00&to=2024-01-01T10:03:00Z", 200, 23, "", ""},
		{"rfc3339 offset with raw plus", "/ads/ad1/aggregated_count?from=2024-01-01T11:00:00+01:00&to=2024-01-01T10:03:00Z", 200, 23, "", ""},
		{"zero fraction is a whole minute", "/ads/ad1/aggregated_count?from=2024-01-01T10:00:00.000Z&to=2024-01-01T10:01:00Z", 200, 5, "", ""},
		{"half open", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 200, 5, "", ""},
		{"to is exclusive at the hour", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T11:00", 200, 5 + 7 + 11 + 13, "", ""},
		{"sixty-one minutes", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T11:01", 200, 5 + 7 + 11 + 13 + 17, "", ""},
		{"filter", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=country:US", 200, 2 + 3, "", "country:US"},
		{"filter other dimension", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=device:mobile", 200, 6, "", "device:mobile"},
		{"filter without clicks", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=format:video", 200, 0, "", "format:video"},
		{"unknown ad", "/ads/nope/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03", 200, 0, "", ""},
		{"escaped slash in ad id", "/ads/a%2Fb/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 200, 3, "", ""},
		{"utf-8 ad id", "/ads/%C3%BCn%C3%AF/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 200, 9, "", ""},
		{"ad id of 256 bytes", "/ads/" + max + "/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 200, 0, "", ""},
		{"exactly the maximum range", "/ads/ad1/aggregated_count?from=2024-01-01T00:00&to=2024-02-01T00:00", 200, 5 + 7 + 11 + 13 + 17, "", ""},

		{"ad id of 257 bytes", "/ads/" + long + "/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 400, 0, codeInvalid, ""},
		{"ad id not utf-8", "/ads/%FF/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 400, 0, codeInvalid, ""},
		{"range over the maximum", "/ads/ad1/aggregated_count?from=2024-01-01T00:00&to=2024-02-01T00:01", 400, 0, codeInvalid, ""},
		{"from equals to", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:00", 400, 0, codeInvalid, ""},
		{"from after to", "/ads/ad1/aggregated_count?from=2024-01-01T10:05&to=2024-01-01T10:00", 400, 0, codeInvalid, ""},
		{"seconds not zero", "/ads/ad1/aggregated_count?from=2024-01-01T10:00:30Z&to=2024-01-01T10:03:00Z", 400, 0, codeInvalid, ""},
		{"fraction not zero", "/ads/ad1/aggregated_count?from=2024-01-01T10:00:00.5Z&to=2024-01-01T10:03:00Z", 400, 0, codeInvalid, ""},
		{"epoch not a minute", "/ads/ad1/aggregated_count?from=1704103201&to=1704103380", 400, 0, codeInvalid, ""},
		{"epoch huge", "/ads/ad1/aggregated_count?from=99999999999999999999&to=1704103380", 400, 0, codeInvalid, ""},
		{"negative epoch", "/ads/ad1/aggregated_count?from=-60&to=1704103380", 400, 0, codeInvalid, ""},
		{"half-hour offset", "/ads/ad1/aggregated_count?from=2024-01-01T10:00:00%2B00:30&to=2024-01-01T11:03:00Z", 200, 5 + 7 + 11 + 13 + 17, "", ""},
		{"unparsable", "/ads/ad1/aggregated_count?from=yesterday&to=2024-01-01T10:03", 400, 0, codeInvalid, ""},
		{"date only", "/ads/ad1/aggregated_count?from=2024-01-01&to=2024-01-02", 400, 0, codeInvalid, ""},
		{"missing to", "/ads/ad1/aggregated_count?from=2024-01-01T10:00", 400, 0, codeInvalid, ""},
		{"empty from", "/ads/ad1/aggregated_count?from=&to=2024-01-01T10:03", 400, 0, codeInvalid, ""},
		{"repeated from", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&from=2024-01-01T10:01&to=2024-01-01T10:03", 400, 0, codeInvalid, ""},
		{"unknown parameter", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter=country:US", 400, 0, codeInvalid, ""},
		{"malformed query", "/ads/ad1/aggregated_count?from=%zz&to=2024-01-01T10:03", 400, 0, codeInvalid, ""},
		{"unknown dimension", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=city:Paris", 400, 0, codeInvalid, ""},
		{"empty filter value", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=country:", 400, 0, codeInvalid, ""},
		{"filter without colon", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=country", 400, 0, codeInvalid, ""},
		{"empty filter_id", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=", 400, 0, codeInvalid, ""},
		{"filter value too long", "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03&filter_id=country:" + long, 400, 0, codeInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, http.MethodGet, tt.target, readToken)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			m := r.json(t)
			if tt.code != 200 {
				if m["error"] != tt.errTag || m["detail"] == "" || m["detail"] == nil {
					t.Fatalf("error body %s, want error %q and a detail", r.body, tt.errTag)
				}
				return
			}
			if got := m["count"]; got != float64(tt.count) {
				t.Errorf("count %v, want %d", got, tt.count)
			}
			u, _ := url.Parse(tt.target)
			wantAd, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(u.EscapedPath(), "/ads/"), "/aggregated_count"))
			if m["ad_id"] != wantAd {
				t.Errorf("ad_id %q, want %q", m["ad_id"], wantAd)
			}
			if got, _ := m["filter_id"].(string); got != tt.filter {
				t.Errorf("filter_id %q, want %q", got, tt.filter)
			}
			if _, ok := m["from"].(string); !ok {
				t.Errorf("no from in %s", r.body)
			}
		})
	}
}

func TestAggregatedCountEchoesNormalisedRange(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, http.MethodGet, "/ads/ad1/aggregated_count?from=1704103200&to=2024-01-01T12:00:00%2B01:00", readToken)
	m := r.json(t)
	if m["from"] != "2024-01-01T10:00:00Z" || m["to"] != "2024-01-01T11:00:00Z" {
		t.Fatalf("from/to %v %v, want RFC 3339 UTC", m["from"], m["to"])
	}
}

func TestPopularAds(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			testPopularAds(t, newTestServerOn(t, b.open(t), func(c *Config) { c.TopN = 3 }))
		})
	}
}

func testPopularAds(t *testing.T, ts *testServer) {
	tests := []struct {
		name   string
		target string
		code   int
		minute string
		ads    string // "ad:count,..." when code is 200
		errTag string
	}{
		{"latest window 1", "/ads/popular_ads?window_size=1", 200, "2024-01-01T10:02:00Z", "ad1:11", ""},
		{"latest window 5 cut to N", "/ads/popular_ads?window_size=5", 200, "2024-01-01T10:02:00Z", "ad1:23,ünï:9,ad2:4", ""},
		{"top_n", "/ads/popular_ads?window_size=5&top_n=2", 200, "2024-01-01T10:02:00Z", "ad1:23,ünï:9", ""},
		{"top_n equals N", "/ads/popular_ads?window_size=5&top_n=3", 200, "2024-01-01T10:02:00Z", "ad1:23,ünï:9,ad2:4", ""},
		{"given minute", "/ads/popular_ads?window_size=1&minute=2024-01-01T10:00", 200, "2024-01-01T10:00:00Z", "ünï:9,ad1:5,a/b:3", ""},
		{"given minute epoch", "/ads/popular_ads?window_size=1&minute=1704103200&top_n=1", 200, "2024-01-01T10:00:00Z", "ünï:9", ""},
		{"minute without clicks", "/ads/popular_ads?window_size=1&minute=2024-01-01T10:01", 200, "2024-01-01T10:01:00Z", "", ""},

		{"no list yet", "/ads/popular_ads?window_size=60", 404, "", "", codeNotFound},
		{"window not configured", "/ads/popular_ads?window_size=7", 400, "", "", codeInvalid},
		{"window zero", "/ads/popular_ads?window_size=0", 400, "", "", codeInvalid},
		{"window negative", "/ads/popular_ads?window_size=-1", 400, "", "", codeInvalid},
		{"window not a number", "/ads/popular_ads?window_size=five", 400, "", "", codeInvalid},
		{"window missing", "/ads/popular_ads", 400, "", "", codeInvalid},
		{"top_n zero", "/ads/popular_ads?window_size=5&top_n=0", 400, "", "", codeInvalid},
		{"top_n over N", "/ads/popular_ads?window_size=5&top_n=4", 400, "", "", codeInvalid},
		{"top_n huge", "/ads/popular_ads?window_size=5&top_n=99999999999", 400, "", "", codeInvalid},
		{"top_n plus sign", "/ads/popular_ads?window_size=5&top_n=%2B2", 400, "", "", codeInvalid},
		{"minute not whole", "/ads/popular_ads?window_size=1&minute=2024-01-01T10:00:01Z", 400, "", "", codeInvalid},
		{"minute unparsable", "/ads/popular_ads?window_size=1&minute=now", 400, "", "", codeInvalid},
		{"unknown parameter", "/ads/popular_ads?window_size=1&n=3", 400, "", "", codeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, http.MethodGet, tt.target, readToken)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			m := r.json(t)
			if tt.code != 200 {
				if m["error"] != tt.errTag || m["detail"] == "" {
					t.Fatalf("error body %s, want %q", r.body, tt.errTag)
				}
				return
			}
			if m["minute"] != tt.minute {
				t.Errorf("minute %v, want %s", m["minute"], tt.minute)
			}
			ads, ok := m["ads"].([]any)
			if !ok {
				t.Fatalf("ads is not a list: %s", r.body)
			}
			var got []string
			for _, a := range ads {
				e := a.(map[string]any)
				got = append(got, fmt.Sprintf("%s:%v", e["ad_id"], e["count"]))
			}
			if strings.Join(got, ",") != tt.ads {
				t.Errorf("ads %s, want %s", strings.Join(got, ","), tt.ads)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	ts := newTestServer(t, nil)
	tests := []struct {
		method, target string
		code           int
		errTag, allow  string
	}{
		{http.MethodGet, "/nope", 404, codeNotFound, ""},
		{http.MethodGet, "/ads/ad1", 404, codeNotFound, ""},
		{http.MethodGet, "/ads//aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 400, codeInvalid, ""},
		{http.MethodPost, "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:01", 405, codeMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/ads/popular_ads", 405, codeMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/admin/replay", 405, codeMethodNotAllowed, "POST"},
		{http.MethodPut, "/healthz", 405, codeMethodNotAllowed, "GET, HEAD"},
		{http.MethodHead, "/admin/replay", 405, codeMethodNotAllowed, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := ts.do(t, tt.method, tt.target, adminToken)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			if m := r.json(t); m["error"] != tt.errTag {
				t.Fatalf("error %v, want %s", m["error"], tt.errTag)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestHead: HEAD on a GET route answers as GET would, through a real HTTP
// server (which drops the body); the read routes still need their token.
func TestHead(t *testing.T) {
	ts := newTestServer(t, nil)
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)
	send := func(t *testing.T, method, target, token string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	tests := []struct {
		target, token string
		code          int
	}{
		{"/healthz", "", 200},
		{"/openapi.json", "", 200},
		{"/ads/popular_ads?window_size=1", adminToken, 200},
		{"/ads/popular_ads?window_size=1", "", 401},
		{"/ads/popular_ads?window_size=7", adminToken, 400},
		{"/nope", adminToken, 404},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			get, getBody := send(t, http.MethodGet, tt.target, tt.token)
			head, headBody := send(t, http.MethodHead, tt.target, tt.token)
			if head.StatusCode != tt.code || get.StatusCode != tt.code {
				t.Fatalf("HEAD %d, GET %d, want %d", head.StatusCode, get.StatusCode, tt.code)
			}
			if len(headBody) != 0 || len(getBody) == 0 {
				t.Errorf("HEAD body %d bytes, GET body %d bytes", len(headBody), len(getBody))
			}
			if h, g := head.Header.Get("Content-Type"), get.Header.Get("Content-Type"); h != g {
				t.Errorf("HEAD Content-Type %q, GET %q", h, g)
			}
		})
	}
}

func TestStoreUnavailable(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.store.SetDown(true)
	for _, target := range []string{
		"/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03",
		"/ads/popular_ads?window_size=1",
		"/ads/popular_ads?window_size=1&minute=2024-01-01T10:00",
		"/readyz",
	} {
		r := ts.do(t, http.MethodGet, target, readToken)
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d, want 503", target, r.code)
		}
		if m := r.json(t); m["error"] != codeUnavailable {
			t.Errorf("%s: error %v", target, m["error"])
		}
		// The fake's error names an address and a driver message: neither
		// may reach the client.
		for _, leak := range []string{"10.0.0.7", "refused", "memstore", "9042"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("%s: body leaks %q: %s", target, leak, r.body)
			}
		}
	}
	if !strings.Contains(ts.logs.String(), "10.0.0.7") {
		t.Error("the cause was not logged")
	}
	ts.store.SetDown(false)
	if r := ts.do(t, http.MethodGet, "/readyz", ""); r.code != 200 {
		t.Fatalf("readyz after recovery: %d", r.code)
	}
}

// failingReader returns a plain (unclassified) error, or panics.
type failingReader struct {
	Reader
	panic bool
}

func (f failingReader) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	if f.panic {
		panic("boom at 10.0.0.7")
	}
	return 0, errors.New("disk on fire at /var/lib/secret")
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	for _, panics := range []bool{false, true} {
		ts := newTestServer(t, nil)
		ts.cfg.Store = failingReader{Reader: ts.store, panic: panics}
		r := ts.do(t, http.MethodGet, "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03", readToken)
		if r.code != 500 {
			t.Fatalf("panic=%v: status %d, want 500", panics, r.code)
		}
		m := r.json(t)
		if m["error"] != codeInternal {
			t.Fatalf("error %v", m["error"])
		}
		for _, leak := range []string{"/var/lib", "10.0.0.7", "boom", "fire", "goroutine"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("body leaks %q: %s", leak, r.body)
			}
		}
		if r.header.Get("X-Request-ID") == "" || !strings.Contains(ts.logs.String(), r.header.Get("X-Request-ID")) {
			t.Error("the failure is not logged under the request id")
		}
	}
}

func TestStoreErrorClasses(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{fmt.Errorf("x: %w", store.ErrUnavailable), 503},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503},
		{fmt.Errorf("x: %w", store.ErrInvalid), 400},
		{errors.New("x"), 500},
	}
	for _, tt := range tests {
		ts := newTestServer(t, nil)
		ts.cfg.Store = errReader{Reader: ts.store, err: tt.err}
		r := ts.do(t, http.MethodGet, "/ads/popular_ads?window_size=1&minute=2024-01-01T10:00", readToken)
		if r.code != tt.code {
			t.Errorf("%v: status %d, want %d", tt.err, r.code, tt.code)
		}
	}
}

type errReader struct {
	Reader
	err error
}

func (e errReader) Top(context.Context, int, int64) (result.Top, error) { return result.Top{}, e.err }
