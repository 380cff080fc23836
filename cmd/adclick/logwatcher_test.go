package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLogwatcherUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--state", "s.json"}, "--files"},
		{[]string{"--files", "x.log"}, "--state"},
		{[]string{"--files", "[", "--state", "s.json"}, "bad glob"},
		{[]string{"--files", "x.log", "--state", "s.json", "--salt-hot-ads", "ad-1"}, "buckets"},
		{[]string{"--files", "x.log", "--state", "s.json", "--poll-interval", "soon"}, "poll-interval"},
		{[]string{"--files", "x.log", "--state", "s.json", "--kafka-brokers", " "}, "--kafka-brokers is empty"},
		{[]string{"--files", "x.log", "--state", "s.json", "--brokers", " "}, "--kafka-brokers is empty"}, // the old name is an alias
	} {
		var errb bytes.Buffer
		args := append([]string{"logwatcher"}, tc.args...)
		if code := run(context.Background(), args, genEnv(io.Discard, &errb, nil)); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// generate → file → logwatcher → Kafka: every line arrives; Ctrl-C (context
// cancel) exits 0 with the position persisted.
func TestLogwatcherEndToEnd(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	log, state := filepath.Join(dir, "clicks.log"), filepath.Join(dir, "pos.json")
	if code := run(context.Background(), []string{"generate", "--count", "2000", "--out", log, "--malformed-share", "0.05"},
		genEnv(io.Discard, io.Discard, nil)); code != 0 {
		t.Fatalf("generate exit %d", code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	env := map[string]string{"ADCLICK_KAFKA_BROKERS": strings.Join(c.ListenAddrs(), ","), "ADCLICK_RAW_TOPIC": "raw"}
	go func() {
		done <- run(ctx, []string{"logwatcher", "--files", filepath.Join(dir, "*.log"), "--state", state}, genEnv(io.Discard, io.Discard, env))
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("raw"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer pcancel()
	n := 0
	for n < 2000 && pctx.Err() == nil {
		n += len(cl.PollFetches(pctx).Records())
	}
	if n != 2000 {
		t.Fatalf("%d of 2000 lines arrived", n)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("logwatcher exit %d after cancel", code)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(log)
	if !strings.Contains(string(b), `"offset":`+strconv.FormatInt(fi.Size(), 10)) {
		t.Fatalf("state %s does not hold the file size %d", b, fi.Size())
	}
}
