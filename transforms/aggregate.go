package transforms

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// Outputs are what the aggregation composite produces.
type Outputs struct {
	// RecordParts are the result.Record values: per-ad counts, filtered
	// counts and top-N lists, each carrying the full value so far (sinks
	// merge by Record.Key), as several collections that sinks consume one by
	// one, in the stages that made them. A Flatten would be a stage of its
	// own: prism would persist every record once more (a million for a
	// 1M-click recount of 2M ads), and it hangs flattening unbounded
	// collections (#33815). Batch: counts
	// and filtered counts (two collections, one per merge stage), then the
	// top lists of every window size. Streaming (StreamingParts): counts and filtered
	// counts, then top lists.
	RecordParts []beam.PCollection
	// DeadLetters are click.DeadLetter values, one per rejected line.
	DeadLetters beam.PCollection
	// Valid are Clicks batches of the valid, unique clicks (too-late ones
	// included, for the raw store). Only set when Config.EmitValid.
	Valid beam.PCollection
	// TooLate are result.Record values of kind TooLate: the event-id hashes
	// of the clicks the fused stage judged too late (toolate.go), for the
	// results sink. Straight from the fused stage, not through the count
	// stage, whose state for those minutes has expired. Only set when
	// Config.Streaming (a batch source has no watermark: nothing is late).
	TooLate beam.PCollection
}

// stateMargin keeps a streaming key's state this long after the last click
// of its minute could pass the too-late check, which the fused stage makes
// against the watermark its input batch carries: the stages' watermarks
// trail the source's, and a partial still on its way must find its key's
// state. Pending elements hold a stage's input watermark, so a smaller
// margin may well be enough (1 s would keep 6 minutes of clicks in the
// count stage instead of 7); it was tried and left, because the stream ==
// batch property test loses clicks under heavy load with either margin
// (an open defect, docs/architecture.md) and could not tell them apart.
// TestStreamingLatenessEdge fails at no margin.
const stateMargin = time.Minute

// StreamingParts is the number of result collections a streaming Aggregate
// returns in RecordParts: counts with filtered counts, then top lists.
const StreamingParts = 2

// Aggregate runs the whole aggregation over batches of raw lines (Lines):
// parse and validate, dedup, count per ad and minute, counts per filter, and
// top-N per configured window size. Every pipeline — streaming, file recount,
// replay — calls this (or AggregateClicks); none repeats its logic.
func Aggregate(s beam.Scope, lines beam.PCollection, cfg Config) (Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return Outputs{}, fmt.Errorf("transforms: invalid config: %w", err)
	}
	s = s.Scope("adclick.Aggregate")
	fused := beam.ParDoN(s, &aggregateLinesFn{
		LatenessMS: cfg.AllowedLateness.Milliseconds(),
		MaxClicks:  cfg.MaxBundleClicks,
		Shards:     cfg.Shards,
		EmitValid:  cfg.EmitValid,
		Fault:      cfg.FaultCountryAs,
	}, lines)
	partials, dead, valid, late := fused[0], fused[1], fused[2], fused[3]
	parts := aggregatePartials(s, partials, cfg)
	out := Outputs{RecordParts: parts, DeadLetters: dead}
	if cfg.EmitValid {
		out.Valid = valid
	}
	if cfg.Streaming {
		out.TooLate = late
	}
	return out, nil
}

// AggregateClicks is Aggregate over clicks that were validated before they
// were stored: the replay from the raw store. Batch: nothing is late. It
// returns the record parts (Outputs.RecordParts).
func AggregateClicks(s beam.Scope, clicks beam.PCollection, cfg Config) ([]beam.PCollection, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transforms: invalid config: %w", err)
	}
	s = s.Scope("adclick.AggregateClicks")
	partials := beam.ParDo(s, &aggregateClicksFn{MaxClicks: cfg.MaxBundleClicks, Shards: cfg.Shards, Fault: cfg.FaultCountryAs}, clicks)
	return aggregatePartials(s, partials, cfg), nil
}

// splitByShardFn sends a partial to one of two outputs by its shard, so that
// every partial of a key goes the same way.
func splitByShardFn(key string, p MinutePartial, a, b func(string, MinutePartial)) {
	if _, shard, _ := splitShardKey(key); shard&1 == 0 {
		a(key, p)
	} else {
		b(key, p)
	}
}

// aggregatePartials is everything after the fused stage; it returns the
// result collections, in the global window.
func aggregatePartials(s beam.Scope, partials beam.PCollection, cfg Config) []beam.PCollection {
	if cfg.Streaming {
		return streamPartials(s, partials, cfg)
	}
	// Batch: the partials are split in two by shard, and each half is
	// merged and exploded by its own stage. Prism runs an aggregation's
	// output as one bundle on one goroutine, but runs independent stages
	// side by side, so the merge — the costliest step after the shuffle —
	// uses two cores instead of one.
	var all, lists []beam.PCollection
	halves := [2]beam.PCollection{}
	halves[0], halves[1] = beam.ParDo2(s, splitByShardFn, partials)
	for i, h := range halves {
		hs := s.Scope(fmt.Sprintf("half%d", i))
		merged := beam.CombinePerKey(hs, &mergeMinuteFn{}, h)
		records, ads := beam.ParDo2(hs, &explodeMinuteFn{NoDigests: cfg.WithoutDigests}, merged)
		// Top-N (batchtop.go): each shard's minutes under the shard's key,
		// every window size sliding over them, in this half's stages too.
		shards := beam.CombinePerKey(hs, &gatherFn{}, ads)
		lists = append(lists, beam.ParDo(hs, &shardTopsFn{WindowSizes: cfg.WindowSizes, N: cfg.TopN}, shards))
		all = append(all, records)
	}
	tops := beam.CombinePerKey(s, &topMergeFn{N: cfg.TopN}, beam.Flatten(s, lists...))
	return append(all, beam.ParDo(s, dropTopKeyFn, tops))
}

// streamPartials is the streaming path: the count stage keyed by (minute,
// shard), then the top-N stage under one key (countstate.go, topstate.go).
func streamPartials(s beam.Scope, partials beam.PCollection, cfg Config) []beam.PCollection {
	horizon := cfg.AllowedLateness + stateMargin
	cf := newCountFn(horizon, cfg.EarlyFiring)
	tf := newTopStreamFn(cfg.WindowSizes, cfg.TopN, horizon+stateMargin, cfg.EarlyFiring)
	cf.NoCache, tf.NoCache = cfg.noStateCache, cfg.noStateCache
	cf.NoDigests = cfg.WithoutDigests
	counts, snaps := beam.ParDo2(s, cf, partials)
	tops := beam.ParDo(s, tf, snaps)
	return []beam.PCollection{counts, tops}
}
