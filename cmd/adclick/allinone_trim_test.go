package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBrokerTrim: the all-in-one's broker drops what its consumers have
// passed — raw records only once published longer ago than keep — and keeps
// the newest dead letters, but none published longer ago than keep.
func TestBrokerTrim(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "raw", "res", "dead"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for _, topic := range []string{"raw", "res", "dead"} {
		for range 100 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	for g, at := range map[string]int64{"g-raw": 60, "g-res": 80} {
		topic := map[string]string{"g-raw": "raw", "g-res": "res"}[g]
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
		if _, err := adm.CommitOffsets(ctx, g, os); err != nil {
			t.Fatal(err)
		}
	}
	tr := &brokerTrim{adm: adm, log: slog.Default(), keep: 50 * time.Millisecond, deadKeep: 10,
		groups: map[string][]string{"raw": {"g-raw"}, "res": {"g-res"}, "dead": nil}, byTime: map[string]bool{"raw": true}}
	starts := func() map[string]int64 {
		out := map[string]int64{}
		ls, err := adm.ListStartOffsets(ctx, "raw", "res", "dead")
		if err != nil {
			t.Fatal(err)
		}
		ls.Each(func(o kadm.ListedOffset) { out[o.Topic] = o.Offset })
		return out
	}
	if err := tr.once(ctx); err != nil {
		t.Fatal(err)
	}
	// Raw records were published less than keep ago: kept.
	if got := starts(); got["raw"] != 0 || got["res"] != 80 || got["dead"] != 90 {
		t.Fatalf("after the first pass, start offsets %v; want raw 0, res 80, dead 90", got)
	}
	time.Sleep(60 * time.Millisecond)
	for range 2 { // the second pass must not fail on offsets already deleted
		if err := tr.once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := starts(); got["raw"] != 60 || got["res"] != 80 || got["dead"] != 100 {
		t.Fatalf("after keep, start offsets %v; want raw 60 (the group's commit), res 80, dead 100 (all older than keep)", got)
	}
}
