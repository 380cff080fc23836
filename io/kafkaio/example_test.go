package kafkaio_test

import (
	"context"
	"log"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkaio"
)

func init() {
	register.Function2x0(linesKV)
	register.Function1x0(logBatch)
	register.Emitter2[[]byte, []byte]()
}

// logBatch logs a batch's size.
func logBatch(b click.Lines) { log.Printf("%d lines", len(b.Lines)) }

// linesKV turns a batch of lines into records keyed by nothing.
func linesKV(b click.Lines, emit func([]byte, []byte)) {
	for _, l := range b.Lines {
		emit(nil, l)
	}
}

// ExampleRead reads a topic as an unbounded collection of line batches, with
// the watermark taken from the records' timestamps, committing safe restart
// offsets to a consumer group, and copies every line to another topic.
func ExampleRead() {
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	lines := kafkaio.Read(s, kafkaio.ReadConfig{
		Brokers:         []string{"127.0.0.1:9092"},
		Topic:           "adclick-raw",
		Group:           "example",
		WatermarkDelay:  5 * time.Second,
		AllowedLateness: 5 * time.Minute,
	})
	kafkaio.WriteKV(s, kafkaio.WriteConfig{Brokers: []string{"127.0.0.1:9092"}, Topic: "copy"}, beam.ParDo(s, linesKV, lines))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}

// ExampleRead_bounded reads what a topic holds when the pipeline starts and
// then ends: EndOffsets makes the read bounded. NoLateness marks every batch
// so that nothing downstream is too late (a recount).
func ExampleRead_bounded() {
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	lines := kafkaio.Read(s, kafkaio.ReadConfig{
		Brokers:    []string{"127.0.0.1:9092"},
		Topic:      "adclick-raw",
		EndOffsets: true,
		NoLateness: true,
	})
	beam.ParDo0(s, logBatch, lines)
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
}
