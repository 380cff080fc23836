package pipelines_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/transforms"
)

func TestExplainAcceptanceStreamPebble(t *testing.T)    { testExplainStream(t, pebbleStore(t)) }
func TestExplainAcceptanceStreamCassandra(t *testing.T) { testExplainStream(t, cassandraStore(t)) }

// testExplainStream: the streaming path — raw topic → streaming job →
// results and raw DB writers → the store — over a run with
// many too-late clicks (10 % of the lines, 10 ads, so some minutes get three
// or more). The job records which clicks it judged too late (result.TooLate
// on the results topic, stored by the results DB writer), and every live
// minute lists exactly the generator's unique clicks minus the too-late
// ones as counted, with the stored digest: a match, none unexplained.
func testExplainStream(t *testing.T, scfg backend.Config) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	run, raw, res, dead := newTopics(t, brokers, "explain", 2)
	n := 4000
	start := time.Now().Add(-7 * time.Minute).Truncate(time.Minute)
	lines, truth := genLines(t, n, clickgen.Config{Seed: 17, Ads: 10, Start: start, EventRate: float64(n) / (6 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.1, MalformedShare: 0.02, Truth: true})
	want, tooLate := groundTruth(t, lines, truth)

	st := openStore(t, scfg)
	e2e.ProduceLines(t, brokers, raw, lines)
	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.WindowSizes = []int{1, 5}
	stopStream := startStream(t, pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: raw, Group: run + "-stream", IdleTimeout: 2 * time.Second,
			MaxSkew: time.Second, WatermarkDelay: time.Second},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: cfg,
	})
	ctx, stop := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for _, w := range []struct {
		kind  dbwriter.Kind
		topic string
	}{{dbwriter.Results, res}, {dbwriter.Raw, raw}} {
		c := dbwriter.Config{Brokers: brokers, Topic: w.topic, Group: run + "-db-" + string(w.kind), Kind: w.kind}
		go func() { errs <- dbwriter.Run(ctx, c, st) }()
	}
	from, to := start.Unix()-2*3600, time.Now().Add(2*time.Minute).Unix()/60*60
	awaitStored(t, st, from, to, want, tooLate, errs)
	stopStream()
	stop()
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("DB writer: %v", err)
		}
	}
	r := checkExplain(t, st, from, to, want, tooLate, true, "")
	f := checkExplain(t, st, from, to, want, tooLate, true, "US")
	t.Logf("stream: %d (ad, minute) cells explained, %d with clicks; %d too-late clicks found, %d of them recorded; at most %d in one minute; %d minutes unexplained: %v",
		r.cells, len(want), r.tooLateFound, r.recorded, r.most, len(r.unexplained), r.unexplained)
	t.Logf("stream, filter country:US: %d too-late clicks found, %d recorded, %d minutes unexplained", f.tooLateFound, f.recorded, len(f.unexplained))
	for _, c := range []explainCheck{r, f} {
		if len(c.unexplained) != 0 {
			t.Errorf("%d live minutes unexplained: %v", len(c.unexplained), c.unexplained)
		}
	}
	if r.recorded != r.tooLateFound || r.most < 3 {
		t.Errorf("the run exercised recorded too-late clicks not fully: %d of %d found were recorded, at most %d in a minute (want 3 or more)",
			r.recorded, r.tooLateFound, r.most)
	}
}

// awaitStored waits until the store serves, for every (ad, minute), the
// count of its unique clicks minus the too-late ones, and holds every unique
// click in the raw store.
func awaitStored(t *testing.T, st store.Store, from, to int64, want map[cell]map[string]string, tooLate map[string]bool, errs chan error) {
	t.Helper()
	wantCounts := map[cell]int64{}
	wantRaw := 0
	for k, ids := range want {
		wantRaw += len(ids)
		for id := range ids {
			if !tooLate[id] {
				wantCounts[k]++
			}
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := map[cell]int64{}
		if err := st.ScanCounts(context.Background(), from, to, func(r result.Record) error {
			if c := r.Count; c != nil && c.Count > 0 {
				got[cell{c.AdID, c.Minute}] = c.Count
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		rawN := countRaw(t, st, from, to)
		if maps.Equal(got, wantCounts) && rawN == wantRaw {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store never caught up: %d counts (want %d), %d raw clicks (want %d)", len(got), len(wantCounts), rawN, wantRaw)
		}
		select {
		case err := <-errs:
			t.Fatalf("a DB writer stopped early: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func countRaw(t *testing.T, st store.Store, from, to int64) int {
	t.Helper()
	shards, err := st.RawShards(context.Background(), time.Unix(from, 0), time.Unix(to, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sh := range shards {
		if err := st.ReadRaw(context.Background(), sh, func(click.Click) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
