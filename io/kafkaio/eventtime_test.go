package kafkaio

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
)

// TestReadEventTimeHeader: on a raw topic with message.timestamp.type=
// LogAppendTime, as adclick creates it, record timestamps are the broker's
// clock (now) and the event time travels in click.EventTimeHeader: the
// watermark of every batch is the one the estimator computes from the
// header's event times, hours behind the timestamps. A record with
// click.NoEventTimeHeader is untimed; one without either header (published
// before the header existed) counts at its timestamp when the producer set
// it (kfake keeps the producer's timestamp whatever the topic says), and is
// untimed when the broker did (Kafka with LogAppendTime): the broker's clock
// is not an event time.
func TestReadEventTimeHeader(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			logAppend := be.name == "kafka"
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := fmt.Sprintf("kafkaio-eventtime-%d-%d", os.Getpid(), topicSeq.Add(1))
			logAppendTopic(ctx, t, newAdmin(t, brokers), topic, 2)
			cfg := ReadConfig{Brokers: brokers, Topic: topic, EndOffsets: true, MaxPollRecords: 7, CheckpointAfter: 11}
			dc := cfg.withDefaults()
			pr := dc.params()
			base := time.Now().Add(-3 * time.Hour).Truncate(time.Minute).UnixMilli()
			states := []*partState{newPartState(), newPartState()}
			next := []int64{0, 0}
			var recs []*kgo.Record
			var want []string
			for i := range 400 {
				part := int32(i % 2)
				ts := base + int64(i)*611
				v := fmt.Sprintf("%d|r%d", ts, i)
				r := &kgo.Record{Partition: part, Value: []byte(v), Timestamp: time.Now()}
				var w int64
				switch {
				case i%29 == 0: // a line that is not a click
					r.Headers = []kgo.RecordHeader{{Key: click.NoEventTimeHeader, Value: []byte("1")}}
					w = states[part].observeUntimed(next[part])
				case i%23 == 0: // published before the header existed
					r.Timestamp = time.UnixMilli(ts)
					if logAppend {
						w = states[part].observeUntimed(next[part])
					} else {
						w = states[part].observe(&pr, next[part], ts, time.Now().UnixMilli())
					}
				default:
					r.Headers = []kgo.RecordHeader{{Key: click.EventTimeHeader, Value: click.AppendEventTime(nil, ts)}}
					w = states[part].observe(&pr, next[part], ts, time.Now().UnixMilli())
				}
				next[part]++
				recs = append(recs, r)
				want = append(want, fmt.Sprintf("%d@%s", w, v))
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			p, s := beam.NewPipelineWithRoot()
			passert.EqualsList(s, beam.ParDo(s, linesWithWatermark, Read(s, cfg)), want)
			if err := ptest.Run(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// logAppendTopic creates a topic with message.timestamp.type=LogAppendTime
// and waits until every partition has a leader.
func logAppendTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	r, err := adm.CreateTopic(ctx, partitions, -1, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")}, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	if err := waitLeaders(ctx, adm, topic, partitions); err != nil {
		t.Fatal(err)
	}
}
