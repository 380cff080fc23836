package queryapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/adclick/adclick/io/store"
)

// TestRangeCheckDoesNotOverflow: the max-range check once multiplied the
// range's seconds into a time.Duration, which wraps past ~292 years, so
// 1970–9999 passed as a short range and cost seconds of a core per request.
func TestRangeCheckDoesNotOverflow(t *testing.T) {
	for _, b := range []backend{memBackend(), pebbleBackend()} {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServerOn(t, b.open(t), nil)
			for _, target := range []string{
				"/ads/ad1/aggregated_count?from=0&to=253402300740",
				"/ads/ad1/aggregated_count?from=1970-01-01T00:00&to=2262-04-12T00:00", // just past Duration's range
				"/ads/ad1/aggregated_count?from=2024-01-01T00:00&to=9999-12-31T23:59",
			} {
				start := time.Now()
				r := ts.do(t, http.MethodGet, target, readToken)
				if r.code != http.StatusBadRequest {
					t.Fatalf("%s: status %d after %v, want 400: %s", target, r.code, time.Since(start), r.body)
				}
				if m := r.json(t); m["error"] != codeInvalid {
					t.Errorf("%s: error %v", target, m["error"])
				}
			}
		})
	}
}

// TestQueryTimeoutAnswers503: a store call that outlives --query-timeout is
// answered 503 JSON with Retry-After at about the timeout. The Pebble store
// once checked its context only before its per-hour loop, so a long range
// ran to the end (200 after the whole scan).
func TestQueryTimeoutAnswers503(t *testing.T) {
	const timeout = 20 * time.Millisecond
	ts := newTestServerOn(t, pebbleBackend().open(t), func(c *Config) {
		c.MaxRange = 290 * 365 * 24 * time.Hour // the longest a Duration allows, about 2.5 M hours to seek
		c.QueryTimeout = timeout
	})
	start := time.Now()
	r := ts.do(t, http.MethodGet, "/ads/ad1/aggregated_count?from=1970-01-01T00:00&to=2259-01-01T00:00", readToken)
	took := time.Since(start)
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("status %d after %v, want 503: %s", r.code, took, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if m := r.json(t); m["error"] != codeUnavailable {
		t.Errorf("error %v", m["error"])
	}
	if took > timeout+time.Second {
		t.Errorf("answered after %v with a %v query timeout", took, timeout)
	}
}

// blockingReader's Count waits until its context ends, as a store call
// that honours its context does when the backend hangs.
type blockingReader struct {
	Reader
	ended chan time.Time
}

func (b blockingReader) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	<-ctx.Done()
	b.ended <- time.Now()
	return 0, fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
}

// TestClientGoneCancelsStoreCall: the store call's context is the request's,
// so a client that hangs up stops the work long before the query timeout.
func TestClientGoneCancelsStoreCall(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.QueryTimeout = time.Minute })
	br := blockingReader{Reader: ts.store, ended: make(chan time.Time, 1)}
	ts.cfg.Store = br
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+countURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+readToken)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered %d before the client gave up", resp.StatusCode)
	}
	gone := time.Now()
	select {
	case ended := <-br.ended:
		if d := ended.Sub(gone); d > 2*time.Second {
			t.Errorf("the store call ended %v after the client went away", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the store call still runs 10 s after the client went away")
	}
}
