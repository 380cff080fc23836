package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/services/logwatch"
)

// ProduceLines publishes lines to topic as the log watcher's records
// (logwatch.LineRecord), without the watcher: for tests that start at the
// raw topic.
func ProduceLines(t testing.TB, brokers []string, topic string, lines [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var p click.Parser
	ctx := context.Background()
	for _, l := range lines {
		r, _ := logwatch.LineRecord(&p, l, time.Now())
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
