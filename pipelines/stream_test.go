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

	"github.com/adclick/adclick/io/testenv"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/clickgen"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
	"github.com/adclick/adclick/transforms/click"
	"github.com/adclick/adclick/transforms/reference"
	"github.com/adclick/adclick/transforms/result"
)

// produceLines publishes lines to topic keyed by ad_id with the event time as
// record timestamp, as the log watcher does.
func produceLines(t *testing.T, brokers []string, topic string, lines [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var p click.Parser
	ctx := context.Background()
	for _, l := range lines {
		r := &kgo.Record{Value: l, Timestamp: time.Now(), Headers: []kgo.RecordHeader{{Key: kafkaio.NoEventTimeHeader}}}
		if c, err := p.Parse(l); err == nil {
			r.Key, r.Timestamp, r.Headers = []byte(c.AdID), time.UnixMilli(c.Time), nil
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

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
	for _, b := range []struct {
		name    string
		brokers func(t *testing.T) []string
	}{
		{"kfake", func(t *testing.T) []string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c.ListenAddrs()
		}},
		{"kafka", func(t *testing.T) []string { return testenv.Kafka(t) }},
	} {
		t.Run(b.name, func(t *testing.T) { testStream(t, b.brokers(t)) })
	}
}

var runSeq atomic.Int64

func testStream(t *testing.T, brokers []string) {
	run := fmt.Sprintf("stream-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), runSeq.Add(1))
	raw, res, dead := run+"-raw", run+"-results", run+"-dead"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for _, topic := range []string{raw, res, dead} {
		if err := kafkaio.EnsureTopic(ctx, brokers, topic, 2); err != nil {
			t.Fatal(err)
		}
	}
	cancel()

	// Event time ends a minute ago, so the idle rule closes every window
	// soon after the backlog is read.
	n := 6000
	start := time.Now().Add(-8 * time.Minute).Truncate(time.Minute)
	lines, truth := genLines(t, n, clickgen.Config{Seed: 5, Ads: 30, Start: start, EventRate: float64(n) / (7 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	produceLines(t, brokers, raw, lines)

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
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, scfg); err != nil {
		t.Fatal(err)
	}
	jctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := runners.Run(jctx, p, runners.Options{Runner: runners.Prism}); done <- err }()

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
	<-done
	reference.Compare(t, got, want)
	if want.Rejected == 0 {
		t.Fatal("the generated log has no malformed lines: the test would not check dead letters")
	}
	if got := countRecords(t, brokers, dead); got != want.Rejected {
		t.Errorf("dead letters = %d, want %d", got, want.Rejected)
	}
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
	cfg.Truth = true
	g, err := clickgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = append([]byte(nil), g.Next().Data...)
	}
	return out, g.Truth()
}
