package pipelines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
	"github.com/adclick/adclick/transforms/result"
)

func init() {
	register.DoFn2x0[result.Record, func(result.Record)](&minuteRangeFn{})
	register.Emitter1[result.Record]()
}

// Metric namespace and counter names of the store I/O (io/storeio), read
// back after a run.
const (
	storeioNamespace  = "adclick.storeio"
	metricRawRead     = "raw_clicks_read"
	metricRecsWritten = "records_written"
)

// ParseMinute parses a time the commands accept: RFC 3339
// (2024-01-01T10:00:00Z), YYYY-MM-DDTHH:MM (UTC) or Unix epoch seconds. The
// time must be a whole minute within SPEC §1's years 2000–2100.
func ParseMinute(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, errors.New("empty time: use RFC 3339, YYYY-MM-DDTHH:MM (UTC) or epoch seconds")
	}
	var t time.Time
	digits := strings.TrimLeft(v, "0123456789") == ""
	switch {
	case digits:
		if len(v) > 12 {
			return time.Time{}, fmt.Errorf("%q is out of range", v)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not epoch seconds: %w", v, err)
		}
		t = time.Unix(n, 0)
	case len(v) == len("2006-01-02T15:04"):
		var err error
		if t, err = time.Parse("2006-01-02T15:04", v); err != nil {
			return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339, YYYY-MM-DDTHH:MM (UTC) or epoch seconds", v)
		}
	default:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339, YYYY-MM-DDTHH:MM (UTC) or epoch seconds", v)
		}
	}
	t = t.UTC()
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fmt.Errorf("%q is outside the years 2000-2100", v)
	}
	if t.Second() != 0 || t.Nanosecond() != 0 {
		return time.Time{}, fmt.Errorf("%q is not a whole minute", v)
	}
	return t, nil
}

var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckRange validates a [from, to) minute range of a replay or
// reconciliation: whole minutes, from before to.
func CheckRange(from, to time.Time) error {
	if from.IsZero() || to.IsZero() {
		return fmt.Errorf("%w: a range needs both from and to", store.ErrInvalid)
	}
	if from.Unix()%60 != 0 || from.Nanosecond() != 0 || to.Unix()%60 != 0 || to.Nanosecond() != 0 {
		return fmt.Errorf("%w: range [%s, %s) is not whole minutes", store.ErrInvalid, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	if !from.Before(to) {
		return fmt.Errorf("%w: range [%s, %s) is empty: from must be before to", store.ErrInvalid, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return nil
}

// ReplayOptions say what to recalculate and how.
type ReplayOptions struct {
	Store    storeio.Config
	From, To time.Time // the minutes [From, To) to recalculate
	// Config is the aggregation configuration (window sizes, top-N); it is
	// run in batch whatever its Streaming field says.
	Config transforms.Config
	Runner runners.Options // default prism
	Read   storeio.ReadOptions
	Write  storeio.WriteOptions
	Logger *slog.Logger // default slog.Default()
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	Generation     store.Generation `json:"generation"`
	From           time.Time        `json:"from"`
	To             time.Time        `json:"to"`
	ReadFrom       time.Time        `json:"read_from"` // From minus the longest top-N window
	ClicksRead     int64            `json:"clicks_read"`
	RecordsWritten int64            `json:"records_written"`
	Duration       time.Duration    `json:"duration_ns"`
}

// Replay recalculates the minutes [From, To) from the raw store (design §9,
// §13: Kappa — the same composite as the streaming job, run in batch):
//
//  1. reserve a fresh generation for [From, To) (nothing reads it yet);
//  2. read the raw clicks of [From − (longest window − 1) min, To), so every
//     top-N window that ends in the range but reaches back before From is
//     complete, run transforms.AggregateClicks in batch, keep the records
//     whose minute is in [From, To), and upsert them into the generation;
//  3. only after the pipeline succeeded, commit the generation: reads of
//     the whole range switch to it in one step, so the API never shows a
//     half-replayed range.
//
// Keys the old results had and the recount does not (a filter value that a
// bug invented, say) disappear with the switch: the new generation holds the
// whole range. Running it again writes the same values into another
// generation: the served values do not change. The streaming job keeps writing
// the live generation meanwhile; minutes outside [From, To) are untouched.
// Minutes still open to late clicks should not be replayed: once the new
// generation serves a minute, later streaming writes to it are not shown.
//
// A failed pipeline leaves the reserved generation uncommitted (never served).
func Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	return replay(ctx, o, nil)
}

// replay is Replay through st when not nil: the generation is reserved and
// committed through that handle, so its next read sees the switch at once
// (another Cassandra handle sees it within its generation cache TTL, 1 s).
func replay(ctx context.Context, o ReplayOptions, st store.Store) (ReplayResult, error) {
	start := time.Now()
	if err := CheckRange(o.From, o.To); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	if err := o.Store.Validate(); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	cfg := o.Config
	cfg.Streaming = false
	if err := cfg.Validate(); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w: %w", store.ErrInvalid, err)
	}
	if o.Runner.Runner == "" {
		o.Runner.Runner = runners.Prism
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	from, to := o.From.UTC(), o.To.UTC()
	res := ReplayResult{From: from, To: to, ReadFrom: from.Add(-time.Duration(slices.Max(cfg.WindowSizes)-1) * time.Minute)}

	if st == nil {
		var err error
		if st, err = storeio.Open(ctx, o.Store, nil); err != nil {
			return res, fmt.Errorf("replay: open the store: %w", err)
		}
		defer st.Close()
	}
	gen, err := st.NewGeneration(ctx, from.Unix(), to.Unix(), to.Unix())
	if err != nil {
		return res, fmt.Errorf("replay: reserve a generation: %w", err)
	}
	res.Generation = gen
	log.Info("replay started", "from", from, "to", to, "read_from", res.ReadFrom, "generation", gen, "runner", o.Runner.Runner)

	p, s := beam.NewPipelineWithRoot()
	clicks, err := storeio.ReadRaw(s, o.Store, res.ReadFrom, to, o.Read)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	recs, err := transforms.AggregateClicks(s, clicks, cfg)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	recs = beam.ParDo(s.Scope("InRange"), &minuteRangeFn{From: from.Unix(), To: to.Unix()}, recs)
	if err := storeio.WriteAggregates(s, o.Store, gen, recs, o.Write); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	pr, err := runners.Run(ctx, p, o.Runner)
	if err != nil {
		return res, fmt.Errorf("replay: pipeline failed, generation %d left uncommitted (never served): %w", gen, err)
	}
	c := runners.Counters(pr, storeioNamespace)
	res.ClicksRead, res.RecordsWritten = c[metricRawRead], c[metricRecsWritten]
	if err := st.CommitGeneration(ctx, gen); err != nil {
		return res, fmt.Errorf("replay: commit generation %d: %w", gen, err)
	}
	res.Duration = time.Since(start)
	log.Info("replay committed", "from", from, "to", to, "generation", gen,
		"clicks_read", res.ClicksRead, "records_written", res.RecordsWritten, "duration", res.Duration)
	return res, nil
}

// minuteRangeFn keeps the records whose minute is in [From, To) (Unix s).
type minuteRangeFn struct {
	From, To int64
}

func (f *minuteRangeFn) ProcessElement(r result.Record, emit func(result.Record)) {
	if m := recordMinute(r); m >= f.From && m < f.To {
		emit(r)
	}
}

func recordMinute(r result.Record) int64 {
	switch {
	case r.Count != nil:
		return r.Count.Minute
	case r.Filtered != nil:
		return r.Filtered.Minute
	case r.Top != nil:
		return r.Top.Minute
	}
	return -1 << 62
}

// RecountStore is `adclick aggregate --from-store`: read the raw clicks of
// [from, to) from a store, aggregate them in batch and write result records
// (SPEC §4) as JSON lines to outPath — the same records a recount of the
// clicks' original log file gives (top-N lists included for the minutes
// after the last click that a window still covers).
func RecountStore(s beam.Scope, st storeio.Config, from, to time.Time, cfg transforms.Config, read storeio.ReadOptions, outPath string) error {
	if err := CheckRange(from, to); err != nil {
		return err
	}
	cfg.Streaming = false
	clicks, err := storeio.ReadRaw(s, st, from, to, read)
	if err != nil {
		return err
	}
	recs, err := transforms.AggregateClicks(s, clicks, cfg)
	if err != nil {
		return err
	}
	WriteRecords(s, outPath, recs)
	return nil
}
