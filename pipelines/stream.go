package pipelines

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/transforms"
)

func init() {
	register.Function1x2(recordKV)
	register.Function1x2(deadLetterKV)
}

// StreamConfig wires the streaming job: the raw topic in, results and dead
// letters out.
type StreamConfig struct {
	Raw         kafkaio.ReadConfig
	Results     kafkaio.WriteConfig
	DeadLetters kafkaio.WriteConfig
	Aggregation transforms.Config
}

// Validate reports configuration problems before the job starts.
func (c StreamConfig) Validate() error {
	if err := c.Raw.Validate(); err != nil {
		return fmt.Errorf("raw topic: %w", err)
	}
	if err := c.Results.Validate(); err != nil {
		return fmt.Errorf("results topic: %w", err)
	}
	if err := c.DeadLetters.Validate(); err != nil {
		return fmt.Errorf("dead-letter topic: %w", err)
	}
	a := c.Aggregation
	a.Streaming = true
	if err := a.Validate(); err != nil {
		return err
	}
	if c.Raw.AllowedLateness != 0 && c.Raw.AllowedLateness != a.AllowedLateness {
		return fmt.Errorf("the reader's allowed lateness %v differs from the aggregation's %v", c.Raw.AllowedLateness, a.AllowedLateness)
	}
	return nil
}

// Stream is the real-time job of the design (§4 ②④): the raw topic →
// parse, validate, dedup and aggregate (transforms.Aggregate, streaming) →
// results to the results topic keyed by the record's key, so every pane of one
// key lands on one partition, in order; rejected lines → the dead-letter topic.
// Raw clicks go to the raw store through their own DB writer consuming the raw
// topic (design ③), so a slow store never holds the aggregation back.
func Stream(s beam.Scope, cfg StreamConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Aggregation.Streaming = true
	cfg.Raw.AllowedLateness = cfg.Aggregation.AllowedLateness
	// A minute's records must be re-read after a restart while any top-N
	// window holding it may still change, not only its own minute's window.
	for _, w := range cfg.Aggregation.WindowSizes {
		cfg.Raw.WindowSpan = max(cfg.Raw.WindowSpan, time.Duration(w)*time.Minute)
	}
	// In process (prism), the reader commits a restart point only once every
	// results writer has written what the minutes it closes produced
	// (kafkaio.Gate): counts and filtered counts, then top lists. A
	// checkpointing runner restores readers and state itself: no gate.
	var gate kafkaio.Gate
	if cfg.Raw.Coordination != kafkaio.Checkpointed {
		gate = kafkaio.NewGate(transforms.StreamingParts)
		cfg.Raw.Gate = gate
	}
	lines, err := kafkaio.TryRead(s, cfg.Raw)
	if err != nil {
		return err
	}
	out, err := transforms.Aggregate(s, lines, cfg.Aggregation)
	if err != nil {
		return err
	}
	if gate.ID != "" && len(out.RecordParts) != gate.Sinks {
		return fmt.Errorf("pipelines: %d result parts, the commit gate expects %d", len(out.RecordParts), gate.Sinks)
	}
	for i, recs := range out.RecordParts {
		rs := s.Scope(fmt.Sprintf("results%d", i))
		kvs := beam.ParDo(rs, recordKV, recs)
		if gate.ID == "" {
			kafkaio.WriteKV(rs, cfg.Results, kvs)
			continue
		}
		kafkaio.WriteKVGated(rs, cfg.Results, kvs, gate, fmt.Sprintf("results%d", i))
	}
	// The too-late records, to the same topic. Not gated: a gated sink
	// reports no progress before its first record, and a run without a
	// too-late click would then never commit. Nothing between the writer
	// and the stage that judged the clicks needs a shuffle, so a runner
	// that fuses them has written a bundle's records when it completes; one
	// lost anyway only leaves explain to infer its clicks (services/explain).
	ts := s.Scope("toolate")
	kafkaio.WriteKV(ts, cfg.Results, beam.ParDo(ts, recordKV, out.TooLate))
	kafkaio.WriteKV(s.Scope("deadletters"), cfg.DeadLetters, beam.ParDo(s, deadLetterKV, out.DeadLetters))
	return nil
}

// recordKV keys a result by what it overwrites; the value has the digest in
// its compact form (result.Record.AppendTopicJSON).
func recordKV(r result.Record) ([]byte, []byte) {
	return []byte(r.Key()), r.AppendTopicJSON(nil)
}

func deadLetterKV(d click.DeadLetter) ([]byte, []byte) {
	b, _ := deadLetterBytes(d)
	return []byte(d.Reason), b
}
