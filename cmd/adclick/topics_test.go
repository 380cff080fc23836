package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/kafkatopics"
	"github.com/adclick/adclick/testing/testenv"
)

func TestTopicsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--partitions", "0"}, nil, "--partitions"},
		{[]string{"--replication-factor", "0"}, nil, "--replication-factor"},
		{[]string{"--raw-retention", "1h"}, nil, "--raw-retention"},
		{nil, map[string]string{"ADCLICK_RESULTS_RETENTION": "10m"}, "--results-retention"},
		{[]string{"--results-topic", "adclick-raw"}, nil, "three different topics"},
		{[]string{"--kafka-brokers", " , "}, nil, "--kafka-brokers"},
	} {
		var errb bytes.Buffer
		args := append([]string{"topics"}, tc.args...)
		if code := run(context.Background(), args, genEnv(io.Discard, &errb, tc.env)); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, tc.env, code, errb.String(), tc.want)
		}
	}
}

// On the real Kafka: the command creates the three topics, a second run
// changes nothing and says so, and a topic made with the wrong settings
// makes it exit non-zero naming each problem, without touching the topic.
func TestTopicsOnRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	p := fmt.Sprintf("topics-%d-", rand.Uint32())
	raw, results, dead, wrong := p+"raw", p+"results", p+"dead", p+"wrong"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopics(ctx, raw, results, dead, wrong); err != nil {
			t.Logf("deleting test topics: %v", err)
		}
		cl.Close()
	})
	// Brokers and the partition count come from the environment, as in
	// production.
	env := map[string]string{"ADCLICK_KAFKA_BROKERS": strings.Join(brokers, ","), "ADCLICK_PARTITIONS": "3"}
	topicsRun := func(rawTopic string, extra ...string) (int, string, string) {
		var out, errb bytes.Buffer
		args := append([]string{"topics", "--raw-topic", rawTopic, "--results-topic", results, "--dead-letter-topic", dead}, extra...)
		code := run(context.Background(), args, genEnv(&out, &errb, env))
		return code, out.String(), errb.String()
	}

	code, out, errs := topicsRun(raw)
	if code != 0 || strings.Count(out, ": created (3 partitions") != 3 {
		t.Fatalf("first run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(out, raw+": created (3 partitions, cleanup.policy=delete, message.timestamp.type=LogAppendTime, retention.bytes=-1, retention.ms=604800000)") {
		t.Errorf("the raw topic's line does not state its settings:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := adm.ListTopics(ctx, raw, results, dead)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{raw, results, dead} {
		if got := len(d[n].Partitions); got != 3 {
			t.Errorf("%s has %d partitions, want 3", n, got)
		}
	}

	code, out, errs = topicsRun(raw)
	if code != 0 || strings.Count(out, ": exists with the needed settings") != 3 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, out, errs = topicsRun(raw, "--verify-only")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("verify-only run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "retention.ms": kadm.StringPtr("3600000")}, wrong); err != nil {
		t.Fatal(err)
	}
	if err := kafkatopics.WaitVisible(ctx, adm, wrong); err != nil {
		t.Fatal(err)
	}
	code, out, errs = topicsRun(wrong)
	if code != 1 {
		t.Fatalf("wrong topic: exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, s := range []string{wrong + ": WRONG, left unchanged", "1 partitions, need at least 3", "cleanup.policy=compact, need delete",
		"retention.ms=3600000 (1h0m0s), need at least 604800000 (168h0m0s)"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout does not say %q:\n%s", s, out)
		}
	}
	if !strings.Contains(errs, "wrong settings in "+wrong) || !strings.Contains(errs, "changes no existing topic") {
		t.Errorf("stderr does not name the wrong topic and what to do:\n%s", errs)
	}
	if strings.Contains(out, "nothing changed") {
		t.Errorf("a failed check says nothing changed as if all were fine:\n%s", out)
	}

	// A missing topic under --verify-only is an error too, and not created.
	code, out, errs = topicsRun(p+"absent", "--verify-only")
	if code != 1 || !strings.Contains(out, p+"absent: MISSING") || !strings.Contains(errs, "missing "+p+"absent: run without --verify-only") {
		t.Errorf("verify-only with a missing topic: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if d, err := adm.ListTopics(ctx, p+"absent"); err == nil && d[p+"absent"].Err == nil {
		t.Errorf("--verify-only created %s", p+"absent")
		_, _ = adm.DeleteTopics(ctx, p+"absent")
	}
}
