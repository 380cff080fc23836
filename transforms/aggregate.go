package transforms

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/zeebo/xxh3"
)

// Outputs are what the aggregation composite produces.
type Outputs struct {
	// Records are result.Record values: per-ad counts, filtered counts and
	// top-N lists, as accumulating panes (overwrite by Record.Key). Set for
	// batch only: prism hangs flattening unbounded collections (#33815), so
	// streaming sinks consume RecordParts one by one instead.
	Records beam.PCollection
	// RecordParts are the same records as several collections: counts and
	// filtered counts (two collections in batch, one per merge stage), then
	// one per top-N window size.
	RecordParts []beam.PCollection
	// DeadLetters are DeadLetter values, one per rejected line.
	DeadLetters beam.PCollection
	// Valid are Clicks batches of the valid, unique clicks (too-late ones
	// included, for the raw store). Only set when Config.EmitValid.
	Valid beam.PCollection
}

// runnerLatenessMargin is added to the allowed lateness the runner applies.
// The too-late decision is made in the fused stage against the source's own
// watermark, so every click that passed it must also pass the runner's check;
// the margin keeps that true whatever the runner's watermark bookkeeping.
const runnerLatenessMargin = time.Minute

// Aggregate runs the whole aggregation over batches of raw lines (Lines):
// parse and validate, dedup, count per ad and minute, counts per filter, and
// top-N per configured window size. Every pipeline — streaming, file recount,
// replay — calls this (or AggregateClicks); none repeats its logic.
func Aggregate(s beam.Scope, lines beam.PCollection, cfg Config) (Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return Outputs{}, fmt.Errorf("transforms: invalid config: %w", err)
	}
	s = s.Scope("adclick.Aggregate")
	partials, dead, valid := beam.ParDo3(s, &aggregateLinesFn{
		LatenessMS: cfg.AllowedLateness.Milliseconds(),
		MaxClicks:  cfg.MaxBundleClicks,
		EmitValid:  cfg.EmitValid,
		Fault:      cfg.FaultCountryAs,
	}, lines)
	parts := aggregatePartials(s, partials, cfg)
	out := Outputs{RecordParts: parts, DeadLetters: dead}
	if !cfg.Streaming {
		out.Records = beam.Flatten(s, parts...)
	}
	if cfg.EmitValid {
		out.Valid = valid
	}
	return out, nil
}

// AggregateClicks is Aggregate over clicks that were validated before they
// were stored: the replay from the raw store. Batch: nothing is late. It
// returns the flattened records.
func AggregateClicks(s beam.Scope, clicks beam.PCollection, cfg Config) (beam.PCollection, error) {
	if err := cfg.Validate(); err != nil {
		return beam.PCollection{}, fmt.Errorf("transforms: invalid config: %w", err)
	}
	s = s.Scope("adclick.AggregateClicks")
	partials := beam.ParDo(s, &aggregateClicksFn{MaxClicks: cfg.MaxBundleClicks, Fault: cfg.FaultCountryAs}, clicks)
	return beam.Flatten(s, aggregatePartials(s, partials, cfg)...), nil
}

// splitByKeyFn sends a partial to one of two outputs by a hash of its key,
// so that every partial of a key goes the same way.
func splitByKeyFn(et beam.EventTime, key string, p Partial, a, b func(beam.EventTime, string, Partial)) {
	if xxh3.HashString(key)&1 == 0 {
		a(et, key, p)
	} else {
		b(et, key, p)
	}
}

// windowing returns the WindowInto options of every stage: the watermark
// firing, early panes every cfg.EarlyFiring while clicks arrive, a late pane
// for every late element. Panes are discarding; the stages accumulate them in
// keyed state (accumulate.go says why).
func windowing(cfg Config) []beam.WindowIntoOption {
	if !cfg.Streaming {
		return nil // batch: one firing at the end of the input
	}
	tr := trigger.AfterEndOfWindow().
		EarlyFiring(trigger.Repeat(trigger.AfterProcessingTime().PlusDelay(cfg.EarlyFiring))).
		LateFiring(trigger.Repeat(trigger.AfterCount(1)))
	return []beam.WindowIntoOption{
		beam.Trigger(tr),
		beam.PanesDiscard(),
		beam.AllowedLateness(cfg.AllowedLateness + runnerLatenessMargin),
	}
}

// aggregatePartials is everything after the fused stage. It returns the
// result collections, each in the global window. Batch has one pane per
// window and needs no accumulation; streaming adds a keyed-state stage after
// each aggregation (accumulate.go).
func aggregatePartials(s beam.Scope, partials beam.PCollection, cfg Config) []beam.PCollection {
	opts := windowing(cfg)
	minute := window.NewFixedWindows(time.Minute)
	global := window.NewGlobalWindows()
	lateness := cfg.AllowedLateness + runnerLatenessMargin

	var all, adCountParts []beam.PCollection
	if cfg.Streaming {
		windowed := beam.WindowInto(s, minute, partials, opts...)
		panes := beam.WindowInto(s, global, beam.CombinePerKey(s, &mergeSetFn{}, windowed))
		records, adCounts := beam.ParDo2(s, &explodeFn{}, beam.ParDo(s, newAccumulatePartialFn(lateness), panes))
		all, adCountParts = append(all, records), append(adCountParts, adCounts)
	} else {
		// Batch: the partials are split in two by key, and each half is
		// merged and exploded by its own stage. Prism runs an aggregation's
		// output as one bundle on one goroutine, but runs independent
		// stages side by side, so the merge — the costliest step after the
		// shuffle — uses two cores instead of one.
		halves := [2]beam.PCollection{}
		halves[0], halves[1] = beam.ParDo2(s, splitByKeyFn, partials)
		for i, h := range halves {
			hs := s.Scope(fmt.Sprintf("half%d", i))
			merged := beam.CombinePerKey(hs, &mergeFn{}, beam.WindowInto(hs, minute, h))
			records, adCounts := beam.ParDo2(hs, &explodeFn{}, merged)
			all, adCountParts = append(all, records), append(adCountParts, adCounts)
		}
	}
	adCounts := adCountParts[0]
	if len(adCountParts) > 1 {
		adCounts = beam.Flatten(s, adCountParts...)
	}

	// Top-N: one snapshot of every ad's count per minute, then for each
	// window size W the sum over the W minutes of sliding windows. Only
	// snapshots (one element per minute and pane) are replicated W times,
	// never per-ad elements.
	adCounts = beam.WindowInto(s, minute, adCounts, opts...)
	snaps := beam.ParDo(s, stampMinuteFn, beam.CombinePerKey(s, &snapshotFn{}, adCounts))
	if cfg.Streaming {
		byMinute := beam.WindowInto(s, global, beam.ParDo(s, keyByMinuteFn, snaps))
		snaps = beam.ParDo(s, newAccumulateSnapshotFn(lateness), byMinute)
	}
	for _, w := range cfg.WindowSizes {
		ws := s.Scope(fmt.Sprintf("top%dm", w))
		slid := beam.WindowInto(ws, window.NewSlidingWindows(time.Minute, time.Duration(w)*time.Minute), snaps, opts...)
		if cfg.Streaming {
			byEnd := beam.ParDo(ws, keyByWindowEndFn, beam.CombinePerKey(ws, &minutesFn{}, slid))
			all = append(all, beam.ParDo(ws, newAccumulateTopFn(cfg.TopN, w, lateness), beam.WindowInto(ws, global, byEnd)))
		} else {
			top := beam.CombinePerKey(ws, &topFn{N: cfg.TopN}, slid)
			all = append(all, beam.ParDo(ws, &topRecordFn{WindowSize: w}, top))
		}
	}
	// Sinks overwrite by key and need no windows: put every result in the
	// global window so batch callers can flatten the kinds into one output.
	for i, pc := range all {
		all[i] = beam.WindowInto(s, global, pc)
	}
	return all
}
