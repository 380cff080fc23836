package queryapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	for i := 0; i < 3; i++ {
		ts.do(t, "GET", countURL, readToken)
	}
	ts.do(t, "GET", "/ads/ad1/aggregated_count?from=x&to=y", readToken)
	ts.do(t, "GET", "/no/such/path/1", "")
	ts.do(t, "GET", "/no/such/path/2", "")
	ts.do(t, "GET", "/admin/replay/job-9", adminToken)

	for _, tt := range []struct {
		route, code string
		want        float64
	}{
		{"/ads/{ad_id}/aggregated_count", "200", 3},
		{"/ads/{ad_id}/aggregated_count", "400", 1},
		{"unmatched", "404", 2},
		{"/admin/replay/{id}", "501", 1},
	} {
		labels := map[string]string{"route": tt.route, "method": "GET", "code": tt.code}
		if got := metricValue(t, ts.reg, "adclick_http_requests_total", labels); got != tt.want {
			t.Errorf("requests %v = %v, want %v", labels, got, tt.want)
		}
		if got := metricValue(t, ts.reg, "adclick_http_request_duration_seconds", labels); got != tt.want {
			t.Errorf("latency samples %v = %v, want %v", labels, got, tt.want)
		}
	}
	if n := seriesCount(t, ts.reg, "adclick_http_requests_total"); n != 4 {
		t.Errorf("%d request series, want 4 (ids must not become labels)", n)
	}
	// /metrics serves the same registry.
	r := ts.do(t, "GET", "/metrics", "")
	if !strings.Contains(string(r.body), `adclick_http_requests_total{code="200",method="GET",route="/ads/{ad_id}/aggregated_count"} 3`) {
		t.Fatalf("/metrics does not show the request counter:\n%s", r.body)
	}
	if !strings.Contains(string(r.body), "adclick_http_request_duration_seconds_bucket") {
		t.Fatal("/metrics has no latency histogram")
	}
}

func TestAccessLogAndRequestID(t *testing.T) {
	ts := newTestServer(t, nil)
	req := httptest.NewRequest("GET", countURL, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	req.Header.Set("X-Request-ID", "upstream-42")
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-ID"); got != "upstream-42" {
		t.Fatalf("request id %q, want the caller's", got)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no access log line in %s", ts.logs.String())
	}
	for k, v := range map[string]any{"request_id": "upstream-42", "route": "/ads/{ad_id}/aggregated_count", "status": float64(200), "client": "analyst", "method": "GET"} {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	if strings.Contains(ts.logs.String(), readToken) {
		t.Error("the token is logged")
	}
	// A malformed incoming id is replaced, and generated ids differ.
	ids := map[string]bool{}
	for i := 0; i < 3; i++ {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Header.Set("X-Request-ID", "bad id\nwith newline")
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-ID")
		if id == "" || strings.Contains(id, " ") {
			t.Fatalf("request id %q", id)
		}
		ids[id] = true
	}
	if len(ids) != 3 {
		t.Fatalf("generated ids repeat: %v", ids)
	}
}

func TestCompression(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, target := range []string{"/openapi.json", "/", "/ads/popular_ads?window_size=5"} {
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+readToken)
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: status %d, Content-Encoding %q", target, rec.Code, rec.Header().Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || len(plain) == 0 {
			t.Fatalf("%s: %v", target, err)
		}
		if cl := rec.Header().Get("Content-Length"); cl != "" && cl != "0" && rec.Body.Len() != 0 {
			// A stale plain-text length on a gzip body breaks clients.
			t.Fatalf("%s: Content-Length %s on a compressed body", target, cl)
		}
	}
}

// gateReader blocks Count until released, to hold a request in flight.
type gateReader struct {
	Reader
	entered chan struct{}
	release chan struct{}
}

func (g gateReader) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	close(g.entered)
	<-g.release
	return g.Reader.Count(ctx, adID, filterID, from, to)
}

func TestGracefulShutdown(t *testing.T) {
	g := gateReader{entered: make(chan struct{}), release: make(chan struct{})}
	ts := newTestServer(t, nil)
	g.Reader = ts.store
	ts.cfg.Store = g
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ts.Serve(ctx, ln) }()

	type answer struct {
		code int
		body []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+countURL, nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- answer{code: res.StatusCode, body: b}
	}()
	<-g.entered
	cancel() // shutdown begins with a request in flight
	time.Sleep(50 * time.Millisecond)
	// New connections are refused while draining.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted during shutdown")
	}
	close(g.release)
	a := <-got
	if a.err != nil || a.code != 200 || !bytes.Contains(a.body, []byte(`"count":23`)) {
		t.Fatalf("in-flight request: %d %s %v", a.code, a.body, a.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestServeReportsListenError(t *testing.T) {
	ts := newTestServer(t, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	err := ts.ListenAndServe(context.Background(), ln.Addr().String())
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("listening on a used port: %v", err)
	}
}
