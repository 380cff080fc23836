package dbwriter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// failsForGood is a store whose Sync fails for good once armed, as the
// embedded store does when its disk fills.
type failsForGood struct {
	store.Store
	armed atomic.Bool
	syncs atomic.Int64
}

func (f *failsForGood) Sync(ctx context.Context) error {
	f.syncs.Add(1)
	if f.armed.Load() {
		return fmt.Errorf("%w: pebblestore: disk full under /x: write /x/000002.log: no space left on device", store.ErrFailed)
	}
	return f.Store.Sync(ctx)
}

// TestStoreFailedForGood: a store that failed for good (store.ErrFailed) is
// not retried: Run returns its error at once, without committing the batch
// it could not make durable, and a restarted writer on a working store
// re-reads that batch and ends with every value.
func TestStoreFailedForGood(t *testing.T) {
	brokers, ps := resultsFixture(t, 1)
	const m = 1704103260
	rec := func(ad string, n int64) [2]string {
		r := result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: n}}
		return [2]string{r.Key(), string(r.AppendJSON(nil))}
	}
	count := func(ad string) int64 {
		n, err := ps.Count(context.Background(), ad, "", m, m+60)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cfg := Config{Brokers: brokers, Topic: "results", Group: "w", Kind: Results, RetryMax: 100 * time.Millisecond}
	st := &failsForGood{Store: ps}
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg, st) }()
	produce(t, brokers, "results", [][2]string{rec("ad1", 1)})
	waitFor(t, "the first batch", func() bool { return count("ad1") == 1 && committed(t, brokers, "w", "results") == 1 })

	st.armed.Store(true)
	produce(t, brokers, "results", [][2]string{rec("ad1", 2), rec("ad2", 5)})
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrFailed) {
			t.Fatalf("Run returned %v, want the store's failure", err)
		}
		t.Logf("Run: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatalf("Run still retrying a store that failed for good after 15 s (%d syncs)", st.syncs.Load())
	}
	if n := st.syncs.Load(); n != 2 {
		t.Errorf("%d syncs: the failed one was retried", n)
	}
	if got := committed(t, brokers, "w", "results"); got != 1 {
		t.Fatalf("committed offset %d after the failure, want 1: the batch that was not made durable was committed", got)
	}

	// The supervisor's restart, the cause fixed: the batch is re-read.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- Run(ctx, cfg, ps) }()
	waitFor(t, "the re-read batch", func() bool {
		return count("ad1") == 2 && count("ad2") == 5 && committed(t, brokers, "w", "results") == 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
