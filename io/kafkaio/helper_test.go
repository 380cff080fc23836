package kafkaio

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/testing/testenv"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x0[click.Lines, func(string)](flattenLines)
	register.Function2x0[click.Lines, func(beam.EventTime, string)](timedLines)
	register.Function1x2[string, []byte, []byte](keyByLine)
	register.Function3x1[beam.Window, string, int, string](formatCount)
	register.Function2x0[click.Lines, func(string)](linesWithWatermark)
	register.Emitter1[string]()
	register.Emitter2[beam.EventTime, string]()
}

func flattenLines(b click.Lines, emit func(string)) {
	for _, l := range b.Lines {
		emit(string(l))
	}
}

// timedLines re-timestamps test lines "<event ms>|<id>" with their event time.
func timedLines(b click.Lines, emit func(beam.EventTime, string)) {
	for _, l := range b.Lines {
		ts, id, _ := strings.Cut(string(l), "|")
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			continue
		}
		_ = id
		emit(beam.EventTime(ms), "k")
	}
}

func keyByLine(s string) ([]byte, []byte) { return []byte("k"), []byte(s) }

func formatCount(w beam.Window, _ string, n int) string {
	return fmt.Sprintf("%d:%d", w.MaxTimestamp().Milliseconds()+1, n)
}

// backend is a Kafka the tests run against: the in-process kfake, and the real
// Apache Kafka that testing/testenv/run.sh started.
type backend struct {
	name    string
	brokers func(t *testing.T) []string
}

func backends() []backend {
	return []backend{
		{"kfake", func(t *testing.T) []string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c.ListenAddrs()
		}},
		{"kafka", func(t *testing.T) []string { return testenv.Kafka(t) }},
	}
}

var topicSeq atomic.Int64

// newTopic creates a fresh topic: the real Kafka is shared by every test of
// the run.
func newTopic(t *testing.T, brokers []string, partitions int32) string {
	t.Helper()
	// Kafka allows [a-zA-Z0-9._-] in topic names (kfake allows more).
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, t.Name())
	name := fmt.Sprintf("kafkaio-%s-%d-%d", safe[:min(len(safe), 200)], os.Getpid(), topicSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopic(ctx, brokers, name, partitions); err != nil {
		t.Fatal(err)
	}
	return name
}

type rec struct {
	partition int32
	ts        int64
	value     string
}

func produce(t testing.TB, brokers []string, topic string, recs []rec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		// A topic just created may be missing from the first metadata answer;
		// the default would wait 5 s before asking again.
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		rs[i] = &kgo.Record{Partition: r.partition, Timestamp: time.UnixMilli(r.ts), Value: []byte(r.value)}
	}
	for i := 0; i < len(rs); i += 10_000 {
		if err := cl.ProduceSync(ctx, rs[i:min(i+10_000, len(rs))]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// newAdmin returns an admin client of brokers, closed when the test ends.
func newAdmin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// waitCommitted polls group's committed offsets of topic until ok accepts
// them, failing the test if the pipeline ends or 60 s pass first.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string, run *streamRun, ok func(kadm.OffsetResponses) bool) kadm.OffsetResponses {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		cancel()
		if err == nil && ok(got) {
			return got
		}
		if err := run.failed(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expected commits were not seen within 60 s: %v %+v", err, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consumeUntil reads the topic from the start until ok says it has seen
// enough, or fails the test after timeout.
func consumeUntil(t *testing.T, brokers []string, topic string, timeout time.Duration, run *streamRun, ok func(vals []string) bool) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var vals []string
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if err := run.failed(); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s: condition not met within %v; read %d values: %v", topic, timeout, len(vals), head(vals))
		}
		fs.EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
		if ok(vals) {
			return vals
		}
	}
}

func head(v []string) []string {
	if len(v) > 20 {
		return v[:20]
	}
	return v
}
