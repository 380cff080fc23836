package queryapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/queryapi/internal/demodata"
)

// benchServer is the full handler (auth, limiter, metrics, JSON access log
// to a discarded writer) over a store filled with 200 ads × 6 hours.
func benchServer(b *testing.B, st storeUnderTest) http.Handler {
	recs := demodata.Records(demodata.Spec{Start: demoStart, Minutes: 360, Ads: 200, WindowSizes: DefaultWindowSizes, TopN: 100})
	if err := st.Upsert(context.Background(), store.LiveGeneration, recs); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Store: st, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
		Tokens: testTokens(), RateLimit: 1e9, RateBurst: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	return s.Handler()
}

func benchRoute(b *testing.B, path func(i int) string) {
	for _, be := range []backend{memBackend(), pebbleBackend()} {
		b.Run(be.name, func(b *testing.B) {
			h := benchServer(b, be.open(b))
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest("GET", path(i), nil)
				req.Header.Set("Authorization", "Bearer "+readToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				i++
			}
		})
	}
}

func BenchmarkAggregatedCount60(b *testing.B) {
	benchRoute(b, func(i int) string {
		from := demoStart + int64(i%300)*60
		return fmt.Sprintf("/ads/%s/aggregated_count?from=%d&to=%d", demodata.AdID(i%200), from, from+3600)
	})
}

func BenchmarkPopularAds(b *testing.B) {
	benchRoute(b, func(i int) string {
		return fmt.Sprintf("/ads/popular_ads?window_size=5&top_n=10&minute=%d", demoStart+int64(i%360)*60)
	})
}
