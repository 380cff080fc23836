package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// ctxT bounds a subtest's store calls, so a hung backend fails the test.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func cnt(ad string, m, c int64) result.Record {
	return result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: c}}
}

func fcnt(ad, f string, m, c int64) result.Record {
	return result.Record{Filtered: &result.FilteredCount{AdID: ad, FilterID: f, Minute: m, Count: c}}
}

func top(w int, m int64, ads ...result.AdCount) result.Record {
	return result.Record{Top: &result.Top{WindowSize: w, Minute: m, Ads: ads}}
}

func count(t *testing.T, s store.Store, ad, f string, from, to int64) int64 {
	t.Helper()
	n, err := s.Count(ctxT(t), ad, f, from, to)
	if err != nil {
		t.Fatalf("Count(%q, %q, %d, %d): %v", ad, f, from, to, err)
	}
	return n
}

func wantCount(t *testing.T, s store.Store, ad, f string, from, to, want int64) {
	t.Helper()
	if got := count(t, s, ad, f, from, to); got != want {
		t.Errorf("Count(%q, %q, +%dm, +%dm) = %d, want %d", ad, f, (from%86400)/60, (to%86400)/60, got, want)
	}
}

// readAll reads [from, to) through n shards and returns every click with how
// often it was seen, checking the shards lie inside the range.
func readAll(t *testing.T, s store.Store, from, to time.Time, n int) map[string]int {
	t.Helper()
	ctx := ctxT(t)
	shards, err := s.RawShards(ctx, from, to, n)
	must(t, err)
	if len(shards) > n {
		t.Fatalf("RawShards(n=%d) returned %d shards", n, len(shards))
	}
	seen := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(shards))
	for _, sh := range shards {
		wg.Add(1)
		go func(sh store.Shard) {
			defer wg.Done()
			errs <- s.ReadRaw(ctx, sh, func(c click.Click) error {
				ms := c.Time
				if ms < from.UnixMilli() || ms >= to.UnixMilli() {
					return fmt.Errorf("click %s at %d ms is outside [%d, %d)", c.EventID, ms, from.UnixMilli(), to.UnixMilli())
				}
				mu.Lock()
				seen[clickKey(c)]++
				mu.Unlock()
				return nil
			})
		}(sh)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	return seen
}

func clickKey(c click.Click) string {
	return fmt.Sprintf("%s|%s|%d|%s|%s|%s|%s|%s", c.EventID, c.AdID, c.Time, c.UserID, c.IP, c.Country, c.Device, c.AdFormat)
}

func sec(s int64) time.Time { return time.Unix(s, 0).UTC() }
