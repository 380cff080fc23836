package dbwriter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
)

// flaky fails its first n writes with ErrUnavailable, like a store that is
// down, and counts calls.
type flaky struct {
	store.Store
	failFirst int64
	calls     atomic.Int64
}

func (f *flaky) Merge(ctx context.Context, gen store.Generation, recs []result.Record) error {
	if f.calls.Add(1) <= f.failFirst {
		return fmt.Errorf("%w: test outage", store.ErrUnavailable)
	}
	return f.Store.Merge(ctx, gen, recs)
}

func (f *flaky) WriteRaw(ctx context.Context, c []click.Click) error {
	if f.calls.Add(1) <= f.failFirst {
		return fmt.Errorf("%w: test outage", store.ErrUnavailable)
	}
	return f.Store.WriteRaw(ctx, c)
}

func produce(t *testing.T, brokers []string, topic string, kvs [][2]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, kv := range kvs {
		recs = append(recs, &kgo.Record{Key: []byte(kv[0]), Value: []byte(kv[1])})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestResultsSurviveOutageAndRestart: panes of one key overwrite in order; a
// store that is down for a while loses nothing; a writer stopped mid-stream
// and restarted from the group's commits ends with the same values.
func TestResultsSurviveOutageAndRestart(t *testing.T) {
	brokers, ps := resultsFixture(t, 2)
	st := &flaky{Store: ps, failFirst: 3}

	const m = 1704103260 // 2024-01-01T10:01:00Z
	rec := func(ad string, n int64) [2]string {
		r := result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: n}}
		return [2]string{r.Key(), string(r.AppendJSON(nil))}
	}
	var first [][2]string
	for i := int64(1); i <= 50; i++ { // accumulating panes: 1, 2, ... 50
		first = append(first, rec("ad1", i), rec("ad2", 2*i))
	}
	first = append(first, [2]string{"junk", "not a result"})
	produce(t, brokers, "results", first)

	cfg := Config{Brokers: brokers, Topic: "results", Group: "w", Kind: Results, RetryMax: 200 * time.Millisecond}
	count := func(ad string) int64 {
		n, err := ps.Count(context.Background(), ad, "", m, m+60)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, st) }()
	waitFor(t, "first panes", func() bool { return count("ad1") == 50 && count("ad2") == 100 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.calls.Load() <= 3 {
		t.Fatalf("%d store calls: the outage was not retried", st.calls.Load())
	}

	// A restarted writer (same group) continues after the committed offsets.
	produce(t, brokers, "results", [][2]string{rec("ad1", 51), rec("ad3", 7)})
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- Run(ctx, cfg, ps) }()
	waitFor(t, "panes after restart", func() bool { return count("ad1") == 51 && count("ad3") == 7 })
	if got := count("ad2"); got != 100 {
		t.Fatalf("ad2 = %d after restart, want 100", got)
	}
	cancel()
	<-done
}

func TestRawLinesSkipMalformed(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ps, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	at := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	var kvs [][2]string
	for i := 0; i < 20; i++ {
		cl := click.Click{EventID: fmt.Sprint("e", i%15), AdID: "ad1", Time: at.Add(time.Duration(i) * time.Second).UnixMilli()}
		if i >= 15 { // re-deliveries of e0..e4, same content
			cl.Time = at.Add(time.Duration(i-15) * time.Second).UnixMilli()
		}
		kvs = append(kvs, [2]string{"ad1", string(cl.AppendJSON(nil))})
	}
	kvs = append(kvs, [2]string{"", "{broken"})
	produce(t, c.ListenAddrs(), "raw", kvs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Brokers: c.ListenAddrs(), Topic: "raw", Group: "r", Kind: Raw}, ps)
	}()
	stored := func() int {
		shards, err := ps.RawShards(context.Background(), at, at.Add(time.Hour), 1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, sh := range shards {
			if err := ps.ReadRaw(context.Background(), sh, func(click.Click) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	waitFor(t, "raw clicks", func() bool { return stored() == 15 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{},
		{Brokers: []string{"x"}, Topic: "t", Group: "g", Kind: "nope"},
		{Brokers: []string{"x"}, Topic: "", Group: "g", Kind: Raw},
		{Brokers: []string{"x"}, Topic: "t", Group: "g", Kind: Raw, MaxBatch: -1},
	}
	for i, c := range bad {
		if c.Validate() == nil {
			t.Errorf("config %d accepted: %+v", i, c)
		}
	}
	if err := (Config{Brokers: []string{"x"}, Topic: "t", Group: "g", Kind: Results}).Validate(); err != nil {
		t.Error(err)
	}
}
