package transforms

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config is what the aggregation composite needs to know. The zero value is
// not valid; start from DefaultConfig.
type Config struct {
	// Streaming selects the keyed-state stages that emit results as clicks
	// arrive, and the too-late rule. Batch (false) counts every valid unique
	// click: nothing is late (docs/spec.md §2).
	Streaming bool
	// AllowedLateness: a click whose window closed more than this long before
	// the source's watermark is too late (docs/spec.md §2). Default 5 minutes.
	AllowedLateness time.Duration
	// EarlyFiring is how often a streaming key that received new clicks
	// emits its changed results, measured in event time on the stages'
	// watermark (which follows the wall clock while the job keeps up), so
	// counts show within about this long. Default 1 second.
	EarlyFiring time.Duration
	// Shards is the number of keys each minute's ads are spread over
	// between the fused stage and the count stage: the parallelism of that
	// stage per minute. Default 4.
	Shards int
	// WindowSizes are the top-N window sizes in minutes (docs/spec.md §2). Default
	// 1, 5, 15, 60.
	WindowSizes []int
	// TopN is the length of each top list. Default 100.
	TopN int
	// EmitValid makes the composite also output the valid clicks (for the raw
	// store); off, it skips building those batches.
	EmitValid bool
	// MaxBundleClicks bounds the clicks one bundle pre-aggregates in memory
	// before it flushes its partials early. Default 1<<20.
	MaxBundleClicks int
	// FaultCountryAs, when set as {from, to}, deliberately counts clicks of
	// country `from` as country `to`: the design's "GB counted as UK" bug,
	// for testing recalculation and reconciliation. Never set it in
	// production; commands expose it only behind a test flag.
	FaultCountryAs [2]string

	// WithoutDigests leaves the digests out of the count and filtered-count
	// records, and so out of the results topic and the stores. Only the
	// benchmarks set it, to measure what digests cost; explain and
	// reconcile need them. (The 128-bit sums are still added up per click,
	// a few nanoseconds; the records, their encoding and storage are what
	// it changes.)
	WithoutDigests bool

	// noStateCache makes the streaming stages rebuild their state on every
	// element (tests: the cache must not carry correctness).
	noStateCache bool
}

// DefaultConfig returns the defaults of docs/spec.md for a batch recount.
func DefaultConfig() Config {
	return Config{
		AllowedLateness: 5 * time.Minute,
		EarlyFiring:     time.Second,
		Shards:          4,
		WindowSizes:     []int{1, 5, 15, 60},
		TopN:            100,
		MaxBundleClicks: 1 << 20,
	}
}

// Limits on configuration values: beyond them state or output would grow
// without bound or the semantics stop making sense.
const (
	MaxWindowSize      = 24 * 60
	MaxTopN            = 10000
	MaxAllowedLateness = 7 * 24 * time.Hour
	MaxShards          = 1024
)

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.AllowedLateness < 0 || c.AllowedLateness > MaxAllowedLateness {
		errs = append(errs, fmt.Errorf("allowed lateness %v must be between 0 and %v", c.AllowedLateness, MaxAllowedLateness))
	}
	if c.AllowedLateness%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("allowed lateness %v must be whole milliseconds", c.AllowedLateness))
	}
	if c.Streaming && (c.EarlyFiring < 100*time.Millisecond || c.EarlyFiring > time.Hour) {
		errs = append(errs, fmt.Errorf("early firing interval %v must be between 100ms and 1h", c.EarlyFiring))
	}
	if len(c.WindowSizes) == 0 {
		errs = append(errs, errors.New("at least one top-N window size is needed"))
	}
	for _, w := range c.WindowSizes {
		if w < 1 || w > MaxWindowSize {
			errs = append(errs, fmt.Errorf("window size %d must be between 1 and %d minutes", w, MaxWindowSize))
		}
	}
	s := slices.Clone(c.WindowSizes)
	slices.Sort(s)
	if len(slices.Compact(s)) != len(c.WindowSizes) {
		errs = append(errs, fmt.Errorf("window sizes %v repeat a value", c.WindowSizes))
	}
	if c.TopN < 1 || c.TopN > MaxTopN {
		errs = append(errs, fmt.Errorf("top-N %d must be between 1 and %d", c.TopN, MaxTopN))
	}
	if c.Shards < 1 || c.Shards > MaxShards {
		errs = append(errs, fmt.Errorf("shards %d must be between 1 and %d", c.Shards, MaxShards))
	}
	if c.MaxBundleClicks < 1 {
		errs = append(errs, fmt.Errorf("max bundle clicks %d must be positive", c.MaxBundleClicks))
	}
	return errors.Join(errs...)
}
