package pipelines_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/services/logwatch"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/transforms"
)

// TestLogToStores pushes a click log with duplicates, late, too-late and
// malformed lines through the whole real-time path — log watcher → Kafka →
// streaming job → DB writers → store — and checks the stored aggregates
// against an independent recount minus exactly the too-late clicks, and the
// raw store against every unique valid click (too-late ones included); the
// stored digests against the recount's.
func TestLogToStores(t *testing.T) { onEachKafka(t, testLogToStores) }

func testLogToStores(t *testing.T, brokers []string) {
	run, raw, res, dead := newTopics(t, brokers, "e2e", 3)

	n := 5000
	start := time.Now().Add(-7 * time.Minute).Truncate(time.Minute)
	lines, truth := genLines(t, n, clickgen.Config{Seed: 11, Ads: 25, Start: start, EventRate: float64(n) / (6 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.03})
	dir := t.TempDir()
	logPath := filepath.Join(dir, "clicks.jsonl")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := f.Write(append(l, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := pebblestore.Open(filepath.Join(dir, "pebble"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.WindowSizes = []int{1, 5}
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: raw, Group: run + "-stream", IdleTimeout: 2 * time.Second,
			MaxSkew: time.Second, WatermarkDelay: time.Second},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: cfg,
	}); err != nil {
		t.Fatal(err)
	}

	jctx, stop := context.WithCancel(context.Background())
	errs := make(chan error, 3)
	job := make(chan error, 1)
	lw, err := logwatch.New(logwatch.Config{Globs: []string{logPath}, Brokers: brokers, Topic: raw,
		StatePath: filepath.Join(dir, "logwatch.json")})
	if err != nil {
		t.Fatal(err)
	}
	go func() { errs <- lw.Run(jctx) }()
	go func() { _, err := runners.Run(jctx, p, runners.Options{Runner: runners.Prism}); job <- err }()
	for _, w := range []struct {
		kind  dbwriter.Kind
		topic string
	}{{dbwriter.Results, res}, {dbwriter.Raw, raw}} {
		c := dbwriter.Config{Brokers: brokers, Topic: w.topic, Group: run + "-db-" + string(w.kind), Kind: w.kind}
		go func() { errs <- dbwriter.Run(jctx, c, st) }()
	}

	tooLate := map[string]bool{}
	for _, id := range truth.TooLate {
		tooLate[id] = true
	}
	want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, tooLate)
	wantRaw := reference.Recount(lines, nil, cfg.TopN, nil).Valid
	if len(truth.TooLate) == 0 || want.Rejected == 0 || want.Dups == 0 {
		t.Fatalf("the generated log lacks too-late (%d), malformed (%d) or duplicate (%d) lines: the test would check less than it says",
			len(truth.TooLate), want.Rejected, want.Dups)
	}
	from, to := start.Unix()-3600, time.Now().Add(time.Minute).Unix()/60*60
	var got reference.Results
	var gotRaw int
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, gotRaw = readStore(t, st, from, to, want)
		if (mapsEqual(got.Counts, want.Counts) && mapsEqual(got.Filtered, want.Filtered) &&
			reflect.DeepEqual(got.Top, want.Top) && gotRaw == wantRaw) || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-errs:
			t.Fatalf("a component stopped early: %v", err)
		case err := <-job:
			t.Fatalf("the streaming job stopped early: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	stop()
	<-job // a cancelled job reports the cancellation in several ways; only stopping matters
	for range 3 {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("component: %v", err)
		}
	}
	reference.Compare(t, got, want)
	// Every stored count carries the digest of exactly the clicks the
	// reference counts (too-late ones left out): through the results
	// topic's JSON, the DB writer's merge and the store.
	reference.CompareDigests(t, got, want)
	if gotRaw != wantRaw {
		t.Errorf("raw store holds %d clicks, want %d (every unique valid click, too-late ones included)", gotRaw, wantRaw)
	}
}

// readStore reads back what the DB writers stored: every count and filtered
// count of [from, to), the top lists the recount expects, and the number of
// raw clicks.
func readStore(t *testing.T, st store.Store, from, to int64, want reference.Results) (reference.Results, int) {
	t.Helper()
	ctx := context.Background()
	var recs []result.Record
	if err := st.ScanCounts(ctx, from, to, func(r result.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	for k := range want.Top {
		var w int
		var m int64
		if _, err := fmt.Sscanf(k, "%d/%d", &w, &m); err != nil {
			t.Fatal(err)
		}
		top, err := st.Top(ctx, w, m)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, result.Record{Top: &top})
	}
	shards, err := st.RawShards(ctx, time.Unix(from, 0), time.Unix(to, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	raw := 0
	for _, sh := range shards {
		if err := st.ReadRaw(ctx, sh, func(click.Click) error { raw++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return reference.FromRecords(recs), raw
}
