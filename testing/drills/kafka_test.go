package drills

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rawCoverage reads the whole raw topic and returns how many records it
// holds and how many of lines are on none of them: when the store misses
// clicks, it tells the log watcher's side from the streaming job's.
func rawCoverage(t *testing.T, brokers []string, topic string, ends map[int32]int64, lines [][]byte) (records, missing int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	read := map[int32]int64{}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		done := true
		for p, e := range ends {
			done = done && read[p] >= e
		}
		if done {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			records++
			seen[string(r.Value)] = true
			read[r.Partition] = r.Offset + 1
		})
	}
	for _, l := range lines {
		if !seen[string(l)] {
			missing++
		}
	}
	return records, missing
}
