package kafkatopics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/testing/testenv"
)

// admin connects to the real Kafka and deletes the named topics at the end.
func admin(t *testing.T, topics ...string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Kafka(t)...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopics(ctx, topics...); err != nil {
			t.Logf("deleting test topics: %v", err)
		}
		cl.Close()
	})
	return adm
}

func specs(prefix string) []Topic {
	return []Topic{
		{Name: prefix + "raw", Partitions: 3, ReplicationFactor: -1, CleanupPolicy: "delete", Retention: 48 * time.Hour, TimestampType: "LogAppendTime", UnlimitedBytes: true},
		{Name: prefix + "results", Partitions: 2, ReplicationFactor: 1, CleanupPolicy: "delete", Retention: 24 * time.Hour},
	}
}

func outcomes(rs []Report) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%s=%s", r.Topic.Name, r.Outcome))
	}
	return strings.Join(s, " ")
}

// Create, then again (nothing changes), then verify only; the created
// topics have the partitions and settings asked for.
func TestEnsureCreatesOnceOnRealKafka(t *testing.T) {
	prefix := fmt.Sprintf("kt-%d-", rand.Uint32())
	want := specs(prefix)
	adm := admin(t, want[0].Name, want[1].Name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for i, verify := range []bool{false, false, true} {
		rs, err := Ensure(ctx, adm, want, verify)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		wantOutcome := Unchanged
		if i == 0 {
			wantOutcome = Created
		}
		for _, r := range rs {
			if r.Outcome != wantOutcome || len(r.Problems) > 0 {
				t.Errorf("run %d: %s: %s %v, want %s", i, r.Topic.Name, r.Outcome, r.Problems, wantOutcome)
			}
		}
	}
	details, err := adm.ListTopics(ctx, want[0].Name, want[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[want[0].Name].Partitions); n != 3 {
		t.Errorf("raw topic has %d partitions, want 3", n)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, want[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(want[0].Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	for k, v := range map[string]string{"cleanup.policy": "delete", "retention.ms": "172800000", "message.timestamp.type": "LogAppendTime", "retention.bytes": "-1"} {
		if got[k] != v {
			t.Errorf("raw topic %s=%q, want %q", k, got[k], v)
		}
	}
}

// A topic made by hand with too few partitions, compaction, a short
// retention and producer timestamps (CreateTime) is reported with each problem, and
// left as it is; a missing topic in verify-only mode is reported missing.
func TestEnsureReportsWrongTopicOnRealKafka(t *testing.T) {
	prefix := fmt.Sprintf("kt-%d-", rand.Uint32())
	want := specs(prefix)
	adm := admin(t, want[0].Name, want[1].Name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{
		"cleanup.policy":         kadm.StringPtr("compact"),
		"retention.ms":           kadm.StringPtr("3600000"),
		"message.timestamp.type": kadm.StringPtr("CreateTime"),
		"retention.bytes":        kadm.StringPtr("1000000"),
	}, want[0].Name); err != nil {
		t.Fatal(err)
	}
	if err := WaitVisible(ctx, adm, want[0].Name); err != nil {
		t.Fatal(err)
	}
	rs, err := Ensure(ctx, adm, want, true)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Outcome != Wrong || rs[1].Outcome != Missing {
		t.Fatalf("outcomes %s, want raw wrong and results missing", outcomes(rs))
	}
	all := strings.Join(rs[0].Problems, "\n")
	for _, s := range []string{"1 partitions, need at least 3", "cleanup.policy=compact, need delete",
		"retention.ms=3600000 (1h0m0s), need at least 172800000", "message.timestamp.type=CreateTime, need LogAppendTime (time retention must count from when a record arrived",
		"retention.bytes=1000000, need -1"} {
		if !strings.Contains(all, s) {
			t.Errorf("problems do not say %q:\n%s", s, all)
		}
	}
	if len(rs[0].Problems) != 5 {
		t.Errorf("%d problems, want 5:\n%s", len(rs[0].Problems), all)
	}
	// Not changed by the check.
	details, err := adm.ListTopics(ctx, want[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[want[0].Name].Partitions); n != 1 {
		t.Errorf("the wrong topic now has %d partitions; Ensure must not change it", n)
	}
	// A longer retention, or none, is fine; more partitions too.
	longer := want[0]
	longer.Retention = time.Hour
	longer.Partitions = 1
	longer.CleanupPolicy, longer.TimestampType, longer.UnlimitedBytes = "compact", "CreateTime", false
	if rs, err = Ensure(ctx, adm, []Topic{longer}, true); err != nil || rs[0].Outcome != Unchanged {
		t.Errorf("a topic with exactly the asked minimums: %s %v, %v", outcomes(rs), rs[0].Problems, err)
	}
}

func TestValidate(t *testing.T) {
	ok := Topic{Name: "x", Partitions: 1, ReplicationFactor: -1, CleanupPolicy: "delete", Retention: time.Hour}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Topic){
		func(t *Topic) { t.Name = "" },
		func(t *Topic) { t.Partitions = 0 },
		func(t *Topic) { t.ReplicationFactor = 0 },
		func(t *Topic) { t.ReplicationFactor = -2 },
		func(t *Topic) { t.CleanupPolicy = "" },
		func(t *Topic) { t.Retention = 0 },
	} {
		tt := ok
		bad(&tt)
		if err := tt.Validate(); err == nil {
			t.Errorf("%+v: no error", tt)
		}
	}
}
