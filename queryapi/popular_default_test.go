package queryapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/queryapi/internal/demodata"
)

// TestPopularAdsDefaultMinute pins the default window: without `minute`,
// popular_ads answers the window that ends at the newest minute with data
// (M), not the newest stored list (M+W-1, a window ending in the future), and
// never a window that ends after now.
func TestPopularAdsDefaultMinute(t *testing.T) {
	const minutes = 20
	start := t0
	last := start + (minutes-1)*60 // M: the newest minute with data
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			// Pipeline-shaped data: lists up to W-1 minutes past M.
			recs := demodata.Records(demodata.Spec{Start: start, Minutes: minutes, Ads: 3, WindowSizes: DefaultWindowSizes, TopN: 10})
			if err := st.Upsert(context.Background(), store.LiveGeneration, recs); err != nil {
				t.Fatal(err)
			}
			clk := &fakeClock{}
			s, err := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Registerer: prometheus.NewRegistry(), Tokens: testTokens(), RateLimit: -1, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			ts := &testServer{Server: s}
			for _, c := range []struct {
				name string
				now  int64 // the clock
				want int64 // the minute answered
			}{
				{"clock after the data", last + 3*3600 + 17, last},
				{"clock in the newest minute", last + 59, last},
				// Data stamped ahead of the clock (a producer's clock
				// skew): the answer is the window ending now.
				{"clock before the newest data", start + 10*60 + 30, start + 10*60},
			} {
				clk.t = time.Unix(c.now, 0)
				for _, w := range DefaultWindowSizes {
					t.Run(fmt.Sprintf("%s/window %d", c.name, w), func(t *testing.T) {
						got := ts.do(t, http.MethodGet, fmt.Sprintf("/ads/popular_ads?window_size=%d", w), readToken)
						if got.code != 200 {
							t.Fatalf("status %d: %s", got.code, got.body)
						}
						if m := got.json(t)["minute"]; m != result.FormatMinute(c.want) {
							t.Errorf("minute %v, want %s (newest stored list: %s)", m, result.FormatMinute(c.want), result.FormatMinute(last+int64(w-1)*60))
						}
						// The body is the list of that window, as asking
						// for the minute explicitly returns it.
						explicit := ts.do(t, http.MethodGet, fmt.Sprintf("/ads/popular_ads?window_size=%d&minute=%d", w, c.want), readToken)
						if string(explicit.body) != string(got.body) {
							t.Errorf("default answer %s differs from minute=%d's %s", got.body, c.want, explicit.body)
						}
					})
				}
			}
		})
	}
}
