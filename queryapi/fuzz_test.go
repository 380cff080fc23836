package queryapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzQueryParams sends arbitrary ad ids and query strings to both query
// routes: no input may produce a 5xx or a panic, and every answer is JSON
// with the error shape when it is not a success.
func FuzzQueryParams(f *testing.F) {
	seeds := [][2]string{
		{"ad1", "from=2024-01-01T10:00&to=2024-01-01T10:03"},
		{"ad1", "from=1704103200&to=1704103380&filter_id=country:US"},
		{"a%2Fb", "from=2024-01-01T11:00:00+01:00&to=2024-01-01T12:00:00Z"},
		{"x", "window_size=5&top_n=2&minute=2024-01-01T10:02"},
		{"%FF", "from=%zz&to=;"},
		{"ad", "from=9999-12-31T23:59&to=99999999999999999999"},
		{"ad", "from=0&to=2678400&filter_id=device:"},
		{"ad", "window_size=1&minute=-1"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	ts := newTestServer(f, nil)
	h := ts.Handler()
	f.Fuzz(func(t *testing.T, adID, rawQuery string) {
		for _, target := range []string{
			"/ads/" + url.PathEscape(adID) + "/aggregated_count?" + rawQuery,
			"/ads/popular_ads?" + rawQuery,
		} {
			u, err := url.ParseRequestURI(target)
			if err != nil {
				continue // not a request a client can send
			}
			req := &http.Request{Method: "GET", URL: u, Header: http.Header{"Authorization": {"Bearer " + readToken}}, RemoteAddr: "192.0.2.9:1"}
			req = req.WithContext(t.Context())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s: status %d: %s", target, rec.Code, rec.Body)
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatalf("%s: body not JSON: %q", target, rec.Body)
			}
			if rec.Code >= 400 && (m["error"] == nil || m["detail"] == nil) {
				t.Fatalf("%s: error body %s", target, rec.Body)
			}
		}
	})
}
