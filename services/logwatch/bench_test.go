package logwatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/adclick/adclick/testing/testenv"
)

// BenchmarkTailToKafka measures lines/s from a click log through the watcher
// into an in-process broker (kfake), acknowledged. Each iteration publishes
// the whole file from a fresh state.
func BenchmarkTailToKafka(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchTail(b, c.ListenAddrs(), topic)
}

// BenchmarkTailToRealKafka is the same against the real broker of testing/testenv
// (a separate JVM process on the same 2 cores).
func BenchmarkTailToRealKafka(b *testing.B) {
	brokers := testenv.Kafka(b)
	name := createTopic(b, brokers, 4)
	benchTail(b, brokers, name)
}

func benchTail(b *testing.B, brokers []string, topic string) {
	const n = 100_000
	dir := b.TempDir()
	log := filepath.Join(dir, "clicks.log")
	appendLines(b, log, lines(b, 11, n))
	fi, _ := os.Stat(log)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w, err := New(Config{Globs: []string{log}, Brokers: brokers, Topic: topic,
			StatePath: filepath.Join(dir, "state", time.Now().Format("150405.000000000")+".json"), Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		end := time.Now().Add(deadline)
		for val(w.m.published) < n {
			if time.Now().After(end) {
				b.Fatal("not all lines published")
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
