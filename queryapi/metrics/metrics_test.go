package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
)

func exposition(t *testing.T, cs ...prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry() // also checks Describe against Collect
	if err := Register(reg, cs...); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("missing %s in\n%s", want, text)
		}
	}
}

func TestStream(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var v StreamValues
	s := NewStream(func() StreamValues { return v }, func() time.Time { return now })
	if text := exposition(t, s); text != "" {
		t.Fatalf("before the first read of the job's metrics the collector exports:\n%s", text)
	}
	v = StreamValues{
		At: now.Add(-3 * time.Second), Running: true,
		ClicksIn: 1000, Counted: 990, Duplicates: 7, TooLate: 3, ResultsWritten: 55,
		Rejected:    map[click.Reason]int64{click.ReasonInvalidJSON: 6, click.ReasonBadTimestamp: 4},
		RecordsRead: 1000, Commits: 2, CommitErrors: 1, DataLoss: 0,
		Watermark:    map[int32]int64{0: now.Add(-12 * time.Second).UnixMilli(), 1: now.Add(-2500 * time.Millisecond).UnixMilli()},
		PartitionLag: map[int32]int64{0: 17},
	}
	text := exposition(t, s)
	wantLines(t, text,
		`adclick_clicks_in_total 1000`,
		`adclick_clicks_counted_total 990`,
		`adclick_clicks_duplicate_total 7`,
		`adclick_clicks_too_late_total 3`,
		`adclick_clicks_rejected_total{reason="invalid_json"} 6`,
		`adclick_clicks_rejected_total{reason="bad_timestamp"} 4`,
		`adclick_results_written_total 55`,
		`adclick_kafka_records_read_total 1000`,
		`adclick_kafka_offset_commits_total 2`,
		`adclick_kafka_offset_commit_errors_total 1`,
		`adclick_kafka_data_loss_events_total 0`,
		`adclick_stream_watermark_lag_seconds{partition="0"} 12`,
		`adclick_stream_watermark_lag_seconds{partition="1"} 2.5`,
		`adclick_stream_partition_lag_records{partition="0"} 17`,
		`adclick_stream_metrics_age_seconds 3`,
		`adclick_stream_job_running 1`,
		"# TYPE adclick_clicks_in_total counter",
		"# TYPE adclick_stream_watermark_lag_seconds gauge",
	)
	// Every reason has its series, at 0 when none was seen.
	for _, r := range click.Reasons {
		if !strings.Contains(text, `adclick_clicks_rejected_total{reason="`+string(r)+`"}`) {
			t.Errorf("reason %s has no series", r)
		}
	}
}

func TestFreshness(t *testing.T) {
	now := time.Unix(1_800_000_090, 0)
	var err error
	f := NewFreshness(func(context.Context) (int64, error) { return 1_800_000_000, err }, func() time.Time { return now })
	wantLines(t, exposition(t, f), `adclick_freshness_seconds 90`, `adclick_newest_minute_timestamp_seconds 1.8e+09`)
	err = errors.New("store down")
	if text := exposition(t, NewFreshness(func(context.Context) (int64, error) { return 0, err }, nil)); text != "" {
		t.Errorf("without a newest minute the collector exports:\n%s", text)
	}
}

// TestConsumerLag reads a group's lag from a Kafka-protocol broker: the
// records after its committed offset, per partition.
func TestConsumerLag(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: int32(i % 2), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "t", Partition: 0, At: 2, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "t", Partition: 1, At: 5, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "g", os); err != nil {
		t.Fatal(err)
	}
	text := exposition(t, NewConsumerLag(GroupLags(adm, "g")))
	wantLines(t, text,
		`adclick_kafka_consumer_lag_records{group="g",partition="0",topic="t"} 3`,
		`adclick_kafka_consumer_lag_records{group="g",partition="1",topic="t"} 0`,
		`adclick_kafka_consumer_lag_up 1`,
	)
	c.Close()
	wantLines(t, exposition(t, NewConsumerLag(GroupLags(adm, "g"))), `adclick_kafka_consumer_lag_up 0`)
}
