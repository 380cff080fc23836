package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/queryapi/internal/memstore"
)

const (
	readToken  = "read-secret-0123456789"
	adminToken = "admin-secret-0123456789"
	// t0 is 2024-01-01T10:00:00Z.
	t0 = int64(1704103200)
)

func testTokens() []Token {
	return []Token{
		{Name: "analyst", Role: RoleRead, Secret: readToken},
		{Name: "ops", Role: RoleAdmin, Secret: adminToken},
	}
}

// fixture is the data every API test reads; expected answers are sums of it.
func fixture() []result.Record {
	c := func(ad string, min int, n int64) result.Record {
		return result.Record{Count: &result.Count{AdID: ad, Minute: t0 + int64(min)*60, Count: n}}
	}
	f := func(ad, filter string, min int, n int64) result.Record {
		return result.Record{Filtered: &result.FilteredCount{AdID: ad, FilterID: filter, Minute: t0 + int64(min)*60, Count: n}}
	}
	top := func(w, min int, ads ...result.AdCount) result.Record {
		return result.Record{Top: &result.Top{WindowSize: w, Minute: t0 + int64(min)*60, Ads: ads}}
	}
	return []result.Record{
		c("ad1", 0, 5), c("ad1", 1, 7), c("ad1", 2, 11), c("ad1", 59, 13), c("ad1", 60, 17),
		c("ad2", 1, 4), c("a/b", 0, 3), c("ünï", 0, 9),
		f("ad1", "country:US", 0, 2), f("ad1", "country:US", 1, 3), f("ad1", "device:mobile", 2, 6),
		top(1, 0, result.AdCount{AdID: "ünï", Count: 9}, result.AdCount{AdID: "ad1", Count: 5}, result.AdCount{AdID: "a/b", Count: 3}),
		top(1, 2, result.AdCount{AdID: "ad1", Count: 11}),
		top(5, 2, result.AdCount{AdID: "ad1", Count: 23}, result.AdCount{AdID: "ünï", Count: 9}, result.AdCount{AdID: "ad2", Count: 4}, result.AdCount{AdID: "a/b", Count: 3}),
		// As the pipeline writes them, 5-minute lists go on until the last
		// window that still holds minute 2 (the newest 1-minute list): the
		// default popular_ads window is minute 6 − 4 = minute 2, not 6.
		top(5, 6, result.AdCount{AdID: "ad1", Count: 11}),
	}
}

type testServer struct {
	*Server
	store *memstore.Store
	reg   *prometheus.Registry
	logs  *syncBuffer
	now   *fakeClock
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestServer builds a server over the fixture; edit adjusts the config.
func newTestServer(t testing.TB, edit func(*Config)) *testServer {
	t.Helper()
	st := memstore.New()
	ts := newTestServerOn(t, st, edit)
	ts.store = st
	return ts
}

// newTestServerOn is newTestServer over any backend (the fixture is written
// to it first).
func newTestServerOn(t testing.TB, st storeUnderTest, edit func(*Config)) *testServer {
	t.Helper()
	if err := st.Upsert(context.Background(), store.LiveGeneration, fixture()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	// The clock stands after the fixture's data (up to t0+60 min), as it does
	// in a running system: popular_ads never answers a window after now.
	clk := &fakeClock{t: time.Unix(t0, 0).Add(2 * time.Hour)}
	cfg := Config{
		Store:      st,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg,
		Tokens:     testTokens(),
		RateLimit:  -1,
		Now:        clk.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, reg: reg, logs: logs, now: clk}
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

// do sends one request through the full handler. token "" sends none.
func (ts *testServer) do(t testing.TB, method, target, token string) resp {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return resp{code: rec.Code, header: rec.Result().Header, body: b}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// metricValue is a counter's value or a histogram's sample count for the
// series with exactly these labels (0 when absent).
func metricValue(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func seriesCount(t testing.TB, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
