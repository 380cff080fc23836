package kafkaio

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register.Function1x2[[]byte, []byte, []byte](keyBeforeBar)
}

// keyBeforeBar keys "<key>|<rest>" values by <key>, as the raw topic is keyed
// by ad_id.
func keyBeforeBar(v []byte) ([]byte, []byte) {
	k, _, _ := strings.Cut(string(v), "|")
	return []byte(k), v
}

type kv struct{ key, value string }

// readAll reads every record of the topic present now.
func readAll(t *testing.T, brokers []string, topic string) (recs []kv, partitionOf map[string]int32) {
	t.Helper()
	c := ReadConfig{Brokers: brokers, Topic: topic, EndOffsets: true}
	c = c.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	specs, err := discover(ctx, &c)
	if err != nil {
		t.Fatal(err)
	}
	offs := map[int32]kgo.Offset{}
	left := 0
	for _, s := range specs {
		if s.End > s.Start {
			offs[s.Partition] = kgo.NewOffset().At(s.Start)
			left += int(s.End - s.Start)
		}
	}
	partitionOf = map[string]int32{}
	if left == 0 {
		return nil, partitionOf
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(recs) < left {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(recs), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, kv{string(r.Key), string(r.Value)})
			if p, ok := partitionOf[string(r.Key)]; ok && p != r.Partition {
				t.Errorf("key %q in partitions %d and %d", r.Key, p, r.Partition)
			}
			partitionOf[string(r.Key)] = r.Partition
		})
	}
	return recs, partitionOf
}

// TestWrite: every element is in the topic once the pipeline has finished
// (the writer flushes in FinishBundle), keyed by the key function, with one
// key always in one partition.
func TestWrite(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			topic := newTopic(t, brokers, 3)
			var vals [][]byte
			var want []kv
			for i := range 3000 {
				k := fmt.Sprintf("ad%d", i%17)
				v := fmt.Sprintf("%s|click%d", k, i)
				vals = append(vals, []byte(v))
				want = append(want, kv{k, v})
			}
			p, s := beam.NewPipelineWithRoot()
			// A long linger: only the flush at the end of the bundle gets the
			// records out before the pipeline finishes.
			Write(s, WriteConfig{Brokers: brokers, Topic: topic, Linger: 3 * time.Second}, keyBeforeBar, beam.CreateList(s, vals))
			if err := ptest.Run(p); err != nil {
				t.Fatal(err)
			}
			got, parts := readAll(t, brokers, topic)
			cmp := func(a, b kv) int { return strings.Compare(a.value, b.value) }
			slices.SortFunc(got, cmp)
			slices.SortFunc(want, cmp)
			if !slices.Equal(got, want) {
				t.Fatalf("topic holds %d records, want %d (first got %v)", len(got), len(want), got[:min(3, len(got))])
			}
			used := map[int32]bool{}
			for _, p := range parts {
				used[p] = true
			}
			if len(used) < 2 {
				t.Fatalf("17 keys all went to partitions %v: not keyed", used)
			}
		})
	}
}

// TestWriteMissingTopic: producing to a topic that does not exist (auto
// creation is off) fails the pipeline with the topic's name instead of
// hanging or dropping records silently.
func TestWriteMissingTopic(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			p, s := beam.NewPipelineWithRoot()
			Write(s, WriteConfig{Brokers: brokers, Topic: "kafkaio-no-such-topic", FlushTimeout: 30 * time.Second},
				keyBeforeBar, beam.CreateList(s, [][]byte{[]byte("a|1")}))
			done := make(chan error, 1)
			go func() { done <- ptest.Run(p) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "kafkaio-no-such-topic") {
					t.Fatalf("got %v, want an error naming the topic", err)
				}
			case <-time.After(90 * time.Second):
				t.Fatal("write to a missing topic hangs")
			}
		})
	}
}

func TestProducer(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			topic := newTopic(t, brokers, 2)
			pr, err := NewProducer(WriteConfig{Brokers: brokers, Topic: topic}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := range 500 {
				if err := pr.Produce(ctx, []byte("k"), fmt.Appendf(nil, "v%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := pr.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ := readAll(t, brokers, topic)
			if len(got) != 500 || got[0].value != "v0" || got[499].value != "v499" {
				t.Fatalf("read %d records back, want v0..v499 in order", len(got))
			}
			if _, err := NewProducer(WriteConfig{Topic: topic}, nil); err == nil {
				t.Fatal("NewProducer without brokers accepted")
			}
		})
	}
}
