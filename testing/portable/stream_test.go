//go:build linux

package portable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
	"github.com/adclick/adclick/transforms"
)

// TestStreamPortable runs the streaming job as `adclick stream --runner
// flink` submits it (checkpointed coordination: no gate, nothing shared
// through process memory) to a job service in another process whose worker
// runs in a process of its own. It reads a raw topic of the real Kafka,
// filled beforehand with 75 minutes of traffic with duplicates, late,
// too-late and malformed lines, and the results topic must come to hold
// exactly the reference recount minus the too-late clicks, with the
// production windows (1, 5, 15 and 60 minutes, top 100); every rejected
// line must reach the dead-letter topic.
func TestStreamPortable(t *testing.T) {
	brokers := testenv.Kafka(t)
	ro := startJobService(t)
	run := fmt.Sprintf("portable-%d-%d", os.Getpid(), time.Now().UnixNano())
	raw, res, dead := run+"-raw", run+"-results", run+"-dead"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range []string{raw, res, dead} {
		if err := kafkaio.EnsureTopic(ctx, brokers, topic, 2); err != nil {
			t.Fatal(err)
		}
	}

	// Event time ends a minute ago, so the idle rule closes every window
	// soon after the backlog is read.
	n := 8000
	lines, truth, err := clickgen.Lines(n, clickgen.Config{Seed: 17, Ads: 300, Start: time.Now().Add(-76 * time.Minute).Truncate(time.Minute),
		EventRate: float64(n) / (75 * 60), DupShare: 0.05, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	e2e.ProduceLines(t, brokers, raw, lines)

	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	scfg := pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: raw, Group: run, IdleTimeout: 2 * time.Second,
			MaxSkew: time.Second, WatermarkDelay: time.Second, Coordination: pipelines.CoordinationFor(runners.Flink)},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: cfg,
	}
	if scfg.Raw.Coordination != kafkaio.Checkpointed {
		t.Fatalf("--runner flink coordinates %q, want %q", scfg.Raw.Coordination, kafkaio.Checkpointed)
	}

	tooLate := map[string]bool{}
	for _, id := range truth.TooLate {
		tooLate[id] = true
	}
	want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, tooLate)
	if len(tooLate) == 0 || want.Rejected == 0 || want.Dups == 0 {
		t.Fatalf("the log lacks too-late (%d), malformed (%d) or duplicate (%d) lines: the test would check less than it says",
			len(tooLate), want.Rejected, want.Dups)
	}

	jctx, stop := context.WithCancel(context.Background())
	defer stop()
	job := make(chan error, 1)
	began := time.Now()
	go func() { job <- pipelines.RunStream(jctx, scfg, ro) }()
	var recs []result.Record
	var got reference.Results
	consume(t, brokers, res, 2*time.Minute, job, func(v []byte) {
		var r result.Record
		if err := json.Unmarshal(v, &r); err != nil {
			t.Errorf("bad result %q: %v", v, err)
			return
		}
		recs = append(recs, r)
	}, func() bool {
		got = reference.Finals(recs, cfg.TopN)
		return mapsEqual(got.Counts, want.Counts) && mapsEqual(got.Filtered, want.Filtered) && reflect.DeepEqual(got.Top, want.Top)
	})
	t.Logf("%d result records; exact %v after the job started", len(recs), time.Since(began).Round(time.Millisecond))
	gotDead := 0
	consume(t, brokers, dead, 10*time.Second, job, func([]byte) { gotDead++ }, func() bool { return gotDead >= want.Rejected })

	// The Go SDK stops waiting when its context ends but leaves the job
	// running; a Flink job is stopped through the runner, as here.
	stop()
	<-job // a cancelled wait reports the cancellation in several ways; only stopping matters
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if err := runners.CancelJobs(cctx, ro.Endpoint); err != nil {
		t.Errorf("cancel the streaming job: %v", err)
	}
	reference.Compare(t, got, want)
	if gotDead != want.Rejected {
		t.Errorf("dead letters = %d, want %d", gotDead, want.Rejected)
	}
}

// consume hands each record of topic, from the start, to each until done
// says so or timeout passes; it fails the test if the job ends first.
func consume(t *testing.T, brokers []string, topic string, timeout time.Duration, job <-chan error, each func([]byte), done func() bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	for !done() && time.Now().Before(deadline) {
		select {
		case err := <-job:
			t.Fatalf("the streaming job stopped early: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { each(r.Value) })
	}
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
