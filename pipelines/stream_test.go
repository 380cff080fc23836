package pipelines_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"

	"sync/atomic"
	"testing"
	"time"

	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/testenv"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/transforms"
)

// consumeResults reads the results topic until timeout or until done says so.
func consumeResults(t *testing.T, brokers []string, topic string, timeout time.Duration, done func([]result.Record) bool) []result.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []result.Record
	for ctx.Err() == nil && (done == nil || !done(out)) {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			var rec result.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				t.Errorf("bad result %q: %v", r.Value, err)
				return
			}
			out = append(out, rec)
		})
	}
	return out
}

// TestStream runs the streaming job on prism against kfake and against the
// real Kafka: generated traffic with duplicates, late, too-late and malformed
// lines, published as the log watcher does, must give results equal to the
// reference recount minus exactly the too-late clicks — counts, filtered
// counts and every top-N list.
func TestStream(t *testing.T) {
	onEachKafka(t, testStream)
}

// onEachKafka runs test against the in-process kfake and against the real
// Kafka testing/testenv started (failing, not skipping, without it).
func onEachKafka(t *testing.T, test func(t *testing.T, brokers []string)) {
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		test(t, c.ListenAddrs())
	})
	t.Run("kafka", func(t *testing.T) { test(t, testenv.Kafka(t)) })
}

var runSeq atomic.Int64

// newTopics creates a fresh raw, results and dead-letter topic: the real
// Kafka is shared by every test of the run. run names them and the groups.
func newTopics(t *testing.T, brokers []string, prefix string, partitions int32) (run, raw, res, dead string) {
	t.Helper()
	run = fmt.Sprintf("%s-%d-%d-%d", prefix, os.Getpid(), time.Now().UnixNano(), runSeq.Add(1))
	raw, res, dead = run+"-raw", run+"-results", run+"-dead"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range []string{raw, res, dead} {
		if err := kafkaio.EnsureTopic(ctx, brokers, topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
	return run, raw, res, dead
}

func testStream(t *testing.T, brokers []string) {
	run, raw, res, dead := newTopics(t, brokers, "stream", 2)

	// Event time ends a minute ago, so the idle rule closes every window
	// soon after the backlog is read.
	n := 6000
	start := time.Now().Add(-8 * time.Minute).Truncate(time.Minute)
	lines, truth := genLines(t, n, clickgen.Config{Seed: 5, Ads: 30, Start: start, EventRate: float64(n) / (7 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	e2e.ProduceLines(t, brokers, raw, lines)

	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.WindowSizes = []int{1, 5}
	scfg := pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: raw, Group: run, IdleTimeout: 2 * time.Second,
			MaxSkew: time.Second, WatermarkDelay: time.Second},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: cfg,
	}
	stop := startStream(t, scfg)

	tooLate := map[string]bool{}
	for _, id := range truth.TooLate {
		tooLate[id] = true
	}
	want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, tooLate)
	var got reference.Results
	consumeResults(t, brokers, res, 2*time.Minute, func(recs []result.Record) bool {
		got = reference.Finals(recs, cfg.TopN)
		return mapsEqual(got.Counts, want.Counts) && mapsEqual(got.Filtered, want.Filtered) && reflect.DeepEqual(got.Top, want.Top)
	})
	stop()
	reference.Compare(t, got, want)
	if want.Rejected == 0 {
		t.Fatal("the generated log has no malformed lines: the test would not check dead letters")
	}
	if got := countRecords(t, brokers, dead); got != want.Rejected {
		t.Errorf("dead letters = %d, want %d", got, want.Rejected)
	}
}

// startStream runs the streaming job on prism until the returned stop is
// called; stop waits for the job to end.
func startStream(t *testing.T, scfg pipelines.StreamConfig) (stop func()) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, scfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := runners.Run(ctx, p, runners.Options{Runner: runners.Prism}); done <- err }()
	return func() { cancel(); <-done }
}

// countRecords counts the records of a topic.
func countRecords(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	return total
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func genLines(t *testing.T, n int, cfg clickgen.Config) ([][]byte, *clickgen.Truth) {
	t.Helper()
	lines, truth, err := clickgen.Lines(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lines, truth
}

// TestStreamEarlyPanes checks that, while clicks keep arriving in real time,
// the top lists of the open minute are re-emitted with growing counts every
// few seconds (early panes) instead of once when the minute closes. With
// accumulating panes at the runner, prism held every stage after the first
// aggregation until windows expired: every batch test passed and the
// dashboard stayed frozen. The bound is loose on purpose: ≥ 3 updates of one
// list within 45 s where about 15 are expected.
func TestStreamEarlyPanes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "raw", "res", "dead"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.WindowSizes = []int{1}
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, pipelines.StreamConfig{
		Raw:         kafkaio.ReadConfig{Brokers: brokers, Topic: "raw", Group: "g"},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: "res"},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: "dead"},
		Aggregation: cfg,
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job := make(chan error, 1)
	go func() { _, err := runners.Run(ctx, p, runners.Options{Runner: runners.Prism}); job <- err }()
	produced := make(chan struct{})
	go func() { // 500 clicks/s with the wall clock as event time
		defer close(produced)
		g, err := clickgen.New(clickgen.Config{Seed: 1, Ads: 20, Start: time.Now(), EventRate: 500})
		if err != nil {
			t.Error(err)
			return
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("raw"))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		var pr click.Parser
		for ctx.Err() == nil {
			for range 50 {
				l := append([]byte(nil), g.Next().Data...)
				r := &kgo.Record{Value: l}
				if c, err := pr.Parse(l); err == nil {
					r.Key, r.Timestamp = []byte(c.AdID), time.UnixMilli(c.Time)
				}
				cl.Produce(ctx, r, nil)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	updates := map[int64]map[int64]bool{} // minute → distinct top counts seen
	most := 0
	consumeResults(t, brokers, "res", 45*time.Second, func(recs []result.Record) bool {
		for _, r := range recs {
			if r.Top == nil || len(r.Top.Ads) == 0 {
				continue
			}
			if updates[r.Top.Minute] == nil {
				updates[r.Top.Minute] = map[int64]bool{}
			}
			updates[r.Top.Minute][r.Top.Ads[0].Count] = true
			most = max(most, len(updates[r.Top.Minute]))
		}
		return most >= 3
	})
	cancel()
	<-job
	<-produced
	if most < 3 {
		t.Fatalf("no top list was updated 3 times within 45 s of live traffic (best: %d; per minute: %v): early panes are not reaching the sinks", most, updates)
	}
}

// TestStreamCommitsAfterResults checks the restart point's promise: when the
// job commits an offset whose metadata closes minutes, every result of those
// minutes is already in the results topic (kafkaio.Gate), and the commit does
// come once they are. Event time lies well behind the clock and the lateness
// is zero, so the idle rule closes every minute soon after the backlog is
// read; at the first commit that reaches the end of the raw topic, the
// results topic must already hold the complete counts and top lists.
func TestStreamCommitsAfterResults(t *testing.T) {
	onEachKafka(t, testStreamCommitsAfterResults)
}

func testStreamCommitsAfterResults(t *testing.T, brokers []string) {
	run, raw, res, dead := newTopics(t, brokers, "commit", 2)
	n := 3000
	start := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	lines, _ := genLines(t, n, clickgen.Config{Seed: 7, Ads: 20, Start: start, EventRate: float64(n) / (5 * 60), DupShare: 0.05})
	e2e.ProduceLines(t, brokers, raw, lines)

	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.AllowedLateness = 0
	cfg.WindowSizes = []int{1, 2}
	scfg := pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: raw, Group: run, IdleTimeout: time.Second,
			MaxSkew: time.Second, WatermarkDelay: time.Second, CommitInterval: 100 * time.Millisecond, CommitDelay: time.Millisecond},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: cfg,
	}
	defer startStream(t, scfg)()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if ctx.Err() != nil {
			offs, err := adm.FetchOffsets(context.Background(), run)
			t.Fatalf("the job never committed the end of the raw topic (%v): the commit gate does not open; committed %+v (%v)", ends, offs, err)
		}
		offs, err := adm.FetchOffsets(ctx, run)
		if err == nil {
			all := true
			ends.Each(func(e kadm.ListedOffset) {
				o, ok := offs.Lookup(raw, e.Partition)
				all = all && ok && o.At == e.Offset
			})
			if all {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Read what the results topic holds right now: it must be complete.
	want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, nil)
	got := reference.Finals(consumeResults(t, brokers, res, 5*time.Second, nil), cfg.TopN)
	reference.Compare(t, got, want)
}
