package dbwriter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
)

// countingSyncs counts the store's Syncs (fsyncs, for Pebble).
type countingSyncs struct {
	store.Store
	syncs atomic.Int64
}

func (c *countingSyncs) Sync(ctx context.Context) error {
	c.syncs.Add(1)
	return c.Store.Sync(ctx)
}

// committed is the group's committed offset summed over the topic's
// partitions.
func committed(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return 0 // the group does not exist yet
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// TestCommittedResultsSurvivePowerCut: the DB writer commits its offsets only
// after the store made the rows durable. On Pebble's crash-simulating
// filesystem, everything not fsynced is dropped at the "power cut"; what the
// store kept plus what a restarted writer re-reads from its committed offsets
// must be every result. With rows written NoSync and offsets committed right
// after, the rows behind the committed offsets were lost for good.
func TestCommittedResultsSurvivePowerCut(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "results"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()

	const m = 1704103260 // 2024-01-01T10:01:00Z
	const ads, panes = 40, 5
	want := map[string]int64{}
	var kvs [][2]string
	for p := int64(1); p <= panes; p++ { // accumulating panes of every ad
		for a := 0; a < ads; a++ {
			ad := fmt.Sprintf("ad-%02d", a)
			r := result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: p * int64(a+1)}}
			kvs = append(kvs, [2]string{r.Key(), string(r.AppendJSON(nil))})
			want[ad] = p * int64(a+1)
		}
	}
	produce(t, brokers, "results", kvs)

	fs := vfs.NewStrictMem()
	open := func() *pebblestore.Store {
		st, err := pebblestore.Open("/db", pebblestore.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	stored := func(st store.Store) map[string]int64 {
		got := map[string]int64{}
		for a := 0; a < ads; a++ {
			ad := fmt.Sprintf("ad-%02d", a)
			n, err := st.Count(context.Background(), ad, "", m, m+60)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if n != 0 {
				got[ad] = n
			}
		}
		return got
	}
	cfg := Config{Brokers: brokers, Topic: "results", Group: "w", Kind: Results, MaxBatch: 30, RetryMax: 200 * time.Millisecond}

	// The first writer consumes everything and commits.
	st := &countingSyncs{Store: open()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, st) }()
	waitFor(t, "every offset committed", func() bool { return committed(t, brokers, "w", "results") == int64(len(kvs)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := stored(st); !maps.Equal(got, want) {
		t.Fatalf("before the crash the store holds %v, want %v", got, want)
	}
	if n := st.syncs.Load(); n == 0 || n >= int64(len(kvs)) {
		t.Errorf("%d syncs for %d records: want one per commit, not one per row", n, len(kvs))
	}

	// Power cut: nothing the store did not fsync survives (its Close must
	// not sync on the way down either).
	fs.SetIgnoreSyncs(true)
	if err := st.Store.Close(); err != nil {
		t.Fatal(err)
	}
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	// A restarted writer re-reads only what its group did not commit.
	re := open()
	defer re.Close()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- Run(ctx, cfg, re) }()
	deadline := time.Now().Add(5 * time.Second) // the restarted writer has nothing to re-read
	for time.Now().Before(deadline) && !maps.Equal(stored(re), want) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := stored(re); !maps.Equal(got, want) {
		t.Fatalf("after the power cut and a restart the store holds %d of %d ads' results (%v), want %v", len(got), len(want), got, want)
	}
}
