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

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

func init() {
	register.DoFn2x0[result.Record, func(result.Record)](&replayRangeFn{})
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
// time must be a whole minute within docs/spec.md §1's years 2000–2100.
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
	Store    backend.Config
	From, To time.Time // the minutes [From, To) to recalculate
	// OpenFrom, when set, is the first minute still open to late clicks in
	// the streaming job (the commands pass now − allowed lateness − margin,
	// unless --allow-open-minutes). Top lists of window ends from OpenFrom
	// on are then not rewritten: the streaming job still writes them, and a
	// generation serving them would hide its updates. To must not be after
	// OpenFrom. Zero: every minute is settled (tests, --allow-open-minutes).
	OpenFrom time.Time
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
	Generation store.Generation `json:"generation"`
	// From and To: the counts and filtered counts of [From, To) were
	// rewritten.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// TopsTo: the top lists of every window end in [From, TopsTo) were
	// rewritten, every configured window size — To + longest window − 1 min,
	// or less when those minutes were still open (ReplayOptions.OpenFrom).
	TopsTo time.Time `json:"tops_to"`
	// ReadFrom and ReadTo bound the raw clicks read: From − (longest
	// window − 1 min) to TopsTo, every minute a rewritten window sums.
	ReadFrom       time.Time     `json:"read_from"`
	ReadTo         time.Time     `json:"read_to"`
	ClicksRead     int64         `json:"clicks_read"`
	RecordsWritten int64         `json:"records_written"`
	Duration       time.Duration `json:"duration_ns"`
}

// Replay recalculates the minutes [From, To) from the raw store (design §9,
// §13: Kappa — the same composite as the streaming job, run in batch), and
// rewrites every stored result that depends on them. With W the longest
// top-N window in minutes, a minute m is summed by the top lists of the
// window ends m … m + W − 1, so a replay of [From, To) rewrites
//
//   - the counts and filtered counts of the minutes [From, To), and
//   - the top lists, of every configured window size, of every window end in
//     [From, To + W − 1) — TopsTo in the result; the lists ending after To
//     mix replayed minutes with later ones.
//
// Minutes after To that are still open to late clicks (OpenFrom) keep their
// top lists: those end TopsTo early (see OpenFrom). The steps:
//
//  1. reserve a fresh generation for the counts of [From, To) and the top
//     lists of [From, TopsTo) (nothing reads it yet);
//  2. read the raw clicks of [From − (W − 1) min, TopsTo) — every minute of
//     every window ending in [From, TopsTo) — run transforms.AggregateClicks
//     in batch, keep the counts of [From, To) and the top lists of
//     [From, TopsTo), and upsert them into the generation;
//  3. only after the pipeline succeeded, commit the generation: reads of
//     both ranges switch to it in one step, so the API never shows a
//     half-replayed range.
//
// Keys the old results had and the recount does not (a filter value that a
// bug invented, say) disappear with the switch: the new generation holds the
// whole range. A window with no click at all has no list after the switch.
// Running it again writes the same values into another generation: the
// served values do not change. The streaming job keeps writing the live
// generation meanwhile; counts outside [From, To) and top lists outside
// [From, TopsTo) are untouched. Once the new generation serves a minute,
// later streaming writes to it are not shown — hence OpenFrom.
//
// A failed pipeline leaves the reserved generation uncommitted (never served).
func Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	return replay(ctx, o, nil)
}

// ReplayTopsTo is the end of the window ends whose top lists a replay of
// [from, to) rewrites: to + maxWindow − 1 minutes, but not past openFrom
// (when set), the first minute still open.
func ReplayTopsTo(to time.Time, maxWindow int, openFrom time.Time) time.Time {
	end := to.Add(time.Duration(maxWindow-1) * time.Minute)
	if !openFrom.IsZero() && openFrom.Before(end) {
		end = openFrom
	}
	return end.UTC()
}

// ReplayWhat names a replay of [from, to) for the raw retention check
// (store.CheckRawRetained), which a replay must pass for every raw click it
// reads: from maxWindow − 1 minutes before from on.
func ReplayWhat(from, to time.Time, maxWindow int) string {
	return fmt.Sprintf("a replay of [%s, %s) (its first top lists also sum the %d minutes before it)",
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), maxWindow-1)
}

// replay is Replay through st when not nil: the generation is reserved and
// committed through that handle, so its next read sees the switch at once
// (another Cassandra handle sees it within its generation cache TTL, 1 s).
func replay(ctx context.Context, o ReplayOptions, st store.Store) (ReplayResult, error) {
	start := time.Now()
	if err := CheckRange(o.From, o.To); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	if !o.OpenFrom.IsZero() && o.To.After(o.OpenFrom) {
		return ReplayResult{}, fmt.Errorf("replay: %w: to %s is after %s, the first minute still open to late clicks",
			store.ErrInvalid, o.To.UTC().Format(time.RFC3339), o.OpenFrom.UTC().Format(time.RFC3339))
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
	maxW := slices.Max(cfg.WindowSizes)
	res := ReplayResult{From: from, To: to, TopsTo: ReplayTopsTo(to, maxW, o.OpenFrom),
		ReadFrom: from.Add(-time.Duration(maxW-1) * time.Minute)}
	res.ReadTo = res.TopsTo
	if full := ReplayTopsTo(to, maxW, time.Time{}); res.TopsTo.Before(full) {
		log.Warn("replay: top lists of window ends still open are left to the streaming job; replay again once they settle to rewrite them",
			"not_rewritten_from", res.TopsTo, "not_rewritten_to", full)
	}

	if st == nil {
		var err error
		if st, err = backend.Open(ctx, o.Store, nil); err != nil {
			return res, fmt.Errorf("replay: open the store: %w", err)
		}
		defer st.Close()
	}
	if err := store.CheckRawRetained(ctx, st, ReplayWhat(from, to, maxW), res.ReadFrom); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	gen, err := st.NewGeneration(ctx, from.Unix(), to.Unix(), res.TopsTo.Unix())
	if err != nil {
		return res, fmt.Errorf("replay: reserve a generation: %w", err)
	}
	res.Generation = gen
	log.Info("replay started", "from", from, "to", to, "tops_to", res.TopsTo, "read_from", res.ReadFrom, "read_to", res.ReadTo,
		"generation", gen, "runner", o.Runner.Runner)

	p, s := beam.NewPipelineWithRoot()
	clicks, err := storeio.ReadRaw(s, o.Store, res.ReadFrom, res.ReadTo, o.Read)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	parts, err := transforms.AggregateClicks(s, clicks, cfg)
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	inRange := &replayRangeFn{From: from.Unix(), To: to.Unix(), TopsTo: res.TopsTo.Unix()}
	if err := writeInRange(s, o, gen, inRange, parts); err != nil {
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
	log.Info("replay committed", "from", from, "to", to, "tops_to", res.TopsTo, "generation", gen,
		"clicks_read", res.ClicksRead, "records_written", res.RecordsWritten, "duration", res.Duration)
	return res, nil
}

// writeInRange writes what the generation serves of each result collection,
// each in the stage that made it.
func writeInRange(s beam.Scope, o ReplayOptions, gen store.Generation, inRange *replayRangeFn, parts []beam.PCollection) error {
	for _, recs := range parts {
		recs = beam.ParDo(s.Scope("InRange"), inRange, recs)
		if err := storeio.WriteAggregates(s, o.Store, gen, recs, o.Write); err != nil {
			return err
		}
	}
	return nil
}

// replayRangeFn keeps what a replay's generation serves: counts and
// filtered counts of the minutes [From, To), top lists of the window ends
// [From, TopsTo) (Unix s). The batch recount also yields counts of the
// minutes it read only for the windows, and lists of windows that reach
// past the data read (incomplete there).
type replayRangeFn struct {
	From, To, TopsTo int64
}

func (f *replayRangeFn) ProcessElement(r result.Record, emit func(result.Record)) {
	end := f.To
	if r.Top != nil {
		end = f.TopsTo
	}
	if m := recordMinute(r); m >= f.From && m < end {
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
// (docs/spec.md §4) as JSON lines to outPath — the same records a recount of the
// clicks' original log file gives (top-N lists included for the minutes
// after the last click that a window still covers).
func RecountStore(s beam.Scope, st backend.Config, from, to time.Time, cfg transforms.Config, read storeio.ReadOptions, outPath string) error {
	if err := CheckRange(from, to); err != nil {
		return err
	}
	cfg.Streaming = false
	clicks, err := storeio.ReadRaw(s, st, from, to, read)
	if err != nil {
		return err
	}
	parts, err := transforms.AggregateClicks(s, clicks, cfg)
	if err != nil {
		return err
	}
	WriteRecords(s, outPath, parts...)
	return nil
}
