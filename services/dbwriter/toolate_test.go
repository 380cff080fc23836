package dbwriter

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
)

// noTooLateMerges fails Merge when a batch holds a too-late record: those
// must be split off before the aggregate write.
type noTooLateMerges struct {
	*pebblestore.Store
	leaked atomic.Int64
}

func (s *noTooLateMerges) Merge(ctx context.Context, gen store.Generation, recs []result.Record) error {
	for _, r := range recs {
		if r.TooLate != nil {
			s.leaked.Add(1)
		}
	}
	return s.Store.Merge(ctx, gen, recs)
}

// aggregatesOnly is a store without a TooLateStore.
type aggregatesOnly struct{ store.Store }

// TestTooLateRouted: the results writer stores too-late records with
// AddTooLate — every record of an (ad, minute) adds up, re-deliveries
// change nothing — and never passes them to Merge; counts of the same
// topic are stored as before. A store without a TooLateStore gets the
// counts and skips the too-late records.
func TestTooLateRouted(t *testing.T) {
	brokers, ps := resultsFixture(t, 2)
	const m = 1704103260
	hs := make([]result.Digest, result.MaxTooLateHashes+5)
	for i := range hs {
		hs[i] = result.EventDigest(fmt.Sprint("late-", i))
	}
	kv := func(r result.Record) [2]string { return [2]string{r.Key(), string(r.AppendJSON(nil))} }
	var kvs [][2]string
	for _, r := range result.SplitTooLate("ad1", m, hs) { // two records of one key
		kvs = append(kvs, kv(r), kv(r)) // each delivered twice
	}
	kvs = append(kvs, kv(result.Record{Count: &result.Count{AdID: "ad1", Minute: m, Count: 4}}),
		kv(result.Record{TooLate: &result.TooLate{AdID: "ad2", Minute: m, Hashes: hs[:1]}}))
	produce(t, brokers, "results", kvs)

	st := &noTooLateMerges{Store: ps}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Brokers: brokers, Topic: "results", Group: "w", Kind: Results}, st) }()
	got := func(ad string) []result.Digest {
		d, err := ps.TooLate(context.Background(), store.LiveGeneration, ad, m)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	waitFor(t, "too-late records and the count", func() bool {
		n, err := ps.Count(context.Background(), "ad1", "", m, m+60)
		return err == nil && n == 4 && len(got("ad1")) == len(hs) && len(got("ad2")) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if !slices.Contains(got("ad1"), h) {
			t.Fatalf("hash %v not stored", h)
		}
	}
	if n := st.leaked.Load(); n != 0 {
		t.Errorf("%d too-late records reached Merge", n)
	}

	// A store that keeps none: the count is still written.
	ps2, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ps2.Close()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- Run(ctx, Config{Brokers: brokers, Topic: "results", Group: "w2", Kind: Results}, aggregatesOnly{ps2})
	}()
	waitFor(t, "the count without a too-late store", func() bool {
		n, err := ps2.Count(context.Background(), "ad1", "", m, m+60)
		return err == nil && n == 4
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, err := ps2.TooLate(context.Background(), store.LiveGeneration, "ad1", m); err != nil || len(d) != 0 {
		t.Errorf("too-late rows %d (%v) through a store that hides them", len(d), err)
	}
}
