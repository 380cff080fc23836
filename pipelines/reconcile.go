package pipelines

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

// DefaultThreshold is the relative difference reconciliation tolerates
// (design §12: 0.1%).
const DefaultThreshold = 0.001

// ReconcileOptions say what to check and whether to repair it.
type ReconcileOptions struct {
	Store    backend.Config
	From, To time.Time // the minutes [From, To)
	// Config is the aggregation configuration: its WindowSizes bound how far a
	// repair replay reads around its range and rewrites top-N lists. Run in
	// batch.
	Config transforms.Config
	// Threshold is the largest tolerated relative difference (0.001 = 0.1%),
	// see Report.RelativeDifference.
	Threshold float64
	// Repair replays the minute ranges of the mismatched keys, then checks
	// the store again. Each replay rewrites the counts of its range and the
	// top lists of every window that sums one of its minutes (Replay), even
	// those ending after To.
	Repair bool
	// OpenFrom is passed to the repair's replays (ReplayOptions.OpenFrom).
	OpenFrom time.Time
	// Chunk is how much of the range one recount covers (whole minutes;
	// default DefaultReconcileChunk): memory holds one chunk's keys.
	Chunk  time.Duration
	Runner runners.Options // default prism
	Read   storeio.ReadOptions
	Logger *slog.Logger
}

// DefaultReconcileChunk is the default ReconcileOptions.Chunk.
const DefaultReconcileChunk = time.Hour

// Report is the reconciliation report, written as JSON.
type Report struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	StartedAt time.Time `json:"started_at"`
	Threshold float64   `json:"threshold"`
	// ClicksRead is the number of raw clicks the recount read.
	ClicksRead int64 `json:"clicks_read"`
	// Check is the comparison of the store with the recount as found.
	Check Check `json:"check"`
	// Repair is set when a repair ran: the ranges replayed and the check of
	// the store afterwards.
	Repair *Repair `json:"repair,omitempty"`
	// ExceedsThreshold is the verdict of the final state: Check, or
	// Repair.After when a repair ran.
	ExceedsThreshold bool          `json:"exceeds_threshold"`
	Duration         time.Duration `json:"duration_ns"`
}

// Check compares recounted and stored values.
type Check struct {
	// Counts and Filtered total the (ad, minute) and (ad, minute, filter)
	// keys separately.
	Counts   Totals `json:"counts"`
	Filtered Totals `json:"filtered"`
	// RelativeDifference is the larger of Counts' and Filtered's.
	RelativeDifference float64 `json:"relative_difference"`
	// Mismatches lists every key whose stored value differs from the
	// recount (a missing key is stored 0), or whose stored digest differs
	// from the recount's at an equal count (the same number of clicks, not
	// the same clicks), largest absolute difference first, then by minute,
	// ad and filter.
	Mismatches []Mismatch `json:"mismatches"`
	// AffectedMinutes is the smallest set of minute ranges that holds every
	// mismatched key's minute.
	AffectedMinutes []MinuteRange `json:"affected_minutes"`
}

// Totals sum one kind of key.
type Totals struct {
	Keys       int   `json:"keys"` // keys present in the recount or the store
	Recounted  int64 `json:"recounted"`
	Stored     int64 `json:"stored"`
	Difference int64 `json:"difference"` // recounted − stored
	// AbsDifference is Σ |recounted − stored| over keys: errors in opposite
	// directions (GB counted as UK) do not cancel.
	AbsDifference int64 `json:"abs_difference"`
	Mismatched    int   `json:"mismatched"`
	// DigestMismatched counts the keys (among Mismatched) whose counts
	// agree but whose digests do not. DigestUnknown counts the stored keys
	// without a digest (stored before digests existed): compared by count
	// only.
	DigestMismatched int `json:"digest_mismatched"`
	DigestUnknown    int `json:"digest_unknown"`
	// RelativeDifference is AbsDifference / Recounted (1 when nothing was
	// recounted but something is stored).
	RelativeDifference float64 `json:"relative_difference"`
}

// Mismatch is one key whose stored value is wrong.
type Mismatch struct {
	AdID       string    `json:"ad_id"`
	FilterID   string    `json:"filter_id,omitempty"`
	Minute     time.Time `json:"minute"`
	Recounted  int64     `json:"recounted"`
	Stored     int64     `json:"stored"`
	Difference int64     `json:"difference"` // recounted − stored
	// DigestMismatch: the counts agree, the sets of clicks do not.
	DigestMismatch bool `json:"digest_mismatch,omitempty"`
	// The digests of the two sides, when known.
	RecountedDigest string `json:"recounted_digest,omitempty"`
	StoredDigest    string `json:"stored_digest,omitempty"`
}

// MinuteRange is [From, To).
type MinuteRange struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Repair is what --repair did.
type Repair struct {
	Ranges  []MinuteRange  `json:"ranges"`
	Replays []ReplayResult `json:"replays"`
	After   Check          `json:"after"`
}

type countKey struct {
	ad, filter string
	minute     int64
}

// countVal is one key's count and digest.
type countVal struct {
	n int64
	d result.Digest
}

// Reconcile recounts [From, To) from the raw store with the batch
// composite, compares every (ad, minute) and (ad, minute, filter) value the
// store serves (ScanCounts) with the recount, and with Repair replays the
// minute ranges of the mismatched keys and checks again. The report's
// verdict is ExceedsThreshold; an error means the check could not be made.
func Reconcile(ctx context.Context, o ReconcileOptions) (*Report, error) {
	start := time.Now()
	if err := CheckRange(o.From, o.To); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if err := o.Store.Validate(); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if !(o.Threshold >= 0 && o.Threshold <= 1) {
		return nil, fmt.Errorf("reconcile: %w: threshold %v must be between 0 and 1", store.ErrInvalid, o.Threshold)
	}
	if o.Chunk == 0 {
		o.Chunk = DefaultReconcileChunk
	}
	if o.Chunk < time.Minute || o.Chunk%time.Minute != 0 {
		return nil, fmt.Errorf("reconcile: %w: chunk %v must be a positive whole number of minutes", store.ErrInvalid, o.Chunk)
	}
	cfg := o.Config
	cfg.Streaming = false
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("reconcile: %w: %w", store.ErrInvalid, err)
	}
	if o.Runner.Runner == "" {
		o.Runner.Runner = runners.Prism
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	from, to := o.From.UTC(), o.To.UTC()
	rep := &Report{From: from, To: to, StartedAt: start.UTC(), Threshold: o.Threshold}

	st, err := backend.Open(ctx, o.Store, nil)
	if err != nil {
		return nil, fmt.Errorf("reconcile: open the store: %w", err)
	}
	defer st.Close()
	what := fmt.Sprintf("a reconciliation of [%s, %s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	if err := store.CheckRawRetained(ctx, st, what, from); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	if rep.Check, rep.ClicksRead, err = checkChunked(ctx, o, cfg, st); err != nil {
		return nil, err
	}
	final := rep.Check
	log.Info("reconcile checked", "from", from, "to", to, "mismatched_keys", len(rep.Check.Mismatches),
		"relative_difference", rep.Check.RelativeDifference)

	if o.Repair && len(rep.Check.Mismatches) > 0 {
		rep.Repair = &Repair{Ranges: repairRanges(rep.Check.AffectedMinutes, slices.Max(cfg.WindowSizes))}
		for _, r := range rep.Repair.Ranges {
			// Through this handle, so the check below sees the switch.
			rr, err := replay(ctx, ReplayOptions{Store: o.Store, From: r.From, To: r.To, OpenFrom: o.OpenFrom, Config: cfg,
				Runner: o.Runner, Read: o.Read, Logger: log}, st)
			if err != nil {
				return rep, fmt.Errorf("reconcile: repair: %w", err)
			}
			rep.Repair.Replays = append(rep.Repair.Replays, rr)
		}
		if rep.Repair.After, _, err = checkChunked(ctx, o, cfg, st); err != nil {
			return rep, fmt.Errorf("reconcile: check after repair: %w", err)
		}
		final = rep.Repair.After
		log.Info("reconcile repaired", "ranges", len(rep.Repair.Ranges), "mismatched_keys_after", len(final.Mismatches))
	}
	// A digest mismatch is never tolerated: equal counts of different
	// clicks are a billing error whatever their size.
	rep.ExceedsThreshold = final.RelativeDifference > o.Threshold || final.Counts.DigestMismatched+final.Filtered.DigestMismatched > 0
	rep.Duration = time.Since(start)
	return rep, nil
}

// checkChunked recounts and checks [o.From, o.To) one chunk at a time, so
// memory holds one chunk's keys (a day of 1,000 ads is tens of millions of
// keys), and merges the chunks' checks.
func checkChunked(ctx context.Context, o ReconcileOptions, cfg transforms.Config, st store.Store) (Check, int64, error) {
	var parts []Check
	var clicks int64
	for c := o.From.UTC(); c.Before(o.To); {
		next := c.Add(o.Chunk)
		if next.After(o.To) {
			next = o.To.UTC()
		}
		recounted, read, err := recountCounts(ctx, o, cfg, c, next)
		if err != nil {
			return Check{}, 0, err
		}
		ck, err := check(ctx, st, c, next, recounted)
		if err != nil {
			return Check{}, 0, err
		}
		parts = append(parts, ck)
		clicks += read
		c = next
	}
	return merge(parts), clicks, nil
}

// merge adds up the checks of disjoint ranges.
func merge(parts []Check) Check {
	c := Check{Mismatches: []Mismatch{}}
	for _, p := range parts {
		for _, t := range [][2]*Totals{{&c.Counts, &p.Counts}, {&c.Filtered, &p.Filtered}} {
			t[0].Keys += t[1].Keys
			t[0].Recounted += t[1].Recounted
			t[0].Stored += t[1].Stored
			t[0].AbsDifference += t[1].AbsDifference
			t[0].Mismatched += t[1].Mismatched
			t[0].DigestMismatched += t[1].DigestMismatched
			t[0].DigestUnknown += t[1].DigestUnknown
		}
		c.Mismatches = append(c.Mismatches, p.Mismatches...)
	}
	finish(&c)
	return c
}

// recountCounts runs the batch composite over the raw clicks of [from, to)
// and returns the counts and filtered counts it produced.
func recountCounts(ctx context.Context, o ReconcileOptions, cfg transforms.Config, from, to time.Time) (map[countKey]countVal, int64, error) {
	// Only counts are compared: the cheapest top-N configuration.
	cfg.WindowSizes, cfg.TopN = []int{1}, 1
	dir, err := os.MkdirTemp("", "adclick-reconcile-")
	if err != nil {
		return nil, 0, fmt.Errorf("reconcile: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "recount.jsonl")

	p, s := beam.NewPipelineWithRoot()
	if err := RecountStore(s, o.Store, from, to, cfg, o.Read, out); err != nil {
		return nil, 0, fmt.Errorf("reconcile: %w", err)
	}
	pr, err := runners.Run(ctx, p, o.Runner)
	if err != nil {
		return nil, 0, fmt.Errorf("reconcile: recount pipeline failed: %w", err)
	}
	counts := map[countKey]countVal{}
	if err := readRecords(out, func(r result.Record) { keyOf(counts, r) }); err != nil {
		return nil, 0, fmt.Errorf("reconcile: read the recount: %w", err)
	}
	return counts, runners.Counters(pr, storeioNamespace)[metricRawRead], nil
}

func readRecords(path string, fn func(result.Record)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r result.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("bad record line: %w", err)
		}
		fn(r)
	}
	return sc.Err()
}

// check compares what st serves for [from, to) with recounted.
func check(ctx context.Context, st store.Store, from, to time.Time, recounted map[countKey]countVal) (Check, error) {
	stored := map[countKey]countVal{}
	err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
		keyOf(stored, r)
		return nil
	})
	if err != nil {
		return Check{}, fmt.Errorf("reconcile: scan the stored counts: %w", err)
	}
	return compare(recounted, stored), nil
}

// keyOf files a count or filtered-count record into m.
func keyOf(m map[countKey]countVal, r result.Record) {
	switch {
	case r.Count != nil:
		m[countKey{r.Count.AdID, "", r.Count.Minute}] = countVal{r.Count.Count, r.Count.Digest}
	case r.Filtered != nil:
		m[countKey{r.Filtered.AdID, r.Filtered.FilterID, r.Filtered.Minute}] = countVal{r.Filtered.Count, r.Filtered.Digest}
	}
}

// finish derives the differences, the order of the mismatches and the
// affected minutes from the sums and the mismatch list.
func finish(c *Check) {
	for _, t := range []*Totals{&c.Counts, &c.Filtered} {
		t.Difference = t.Recounted - t.Stored
		switch {
		case t.Recounted > 0:
			t.RelativeDifference = float64(t.AbsDifference) / float64(t.Recounted)
		case t.AbsDifference > 0:
			t.RelativeDifference = 1
		}
	}
	c.RelativeDifference = max(c.Counts.RelativeDifference, c.Filtered.RelativeDifference)
	slices.SortFunc(c.Mismatches, func(a, b Mismatch) int {
		return cmp.Or(cmp.Compare(abs(b.Difference), abs(a.Difference)), a.Minute.Compare(b.Minute),
			cmp.Compare(a.AdID, b.AdID), cmp.Compare(a.FilterID, b.FilterID))
	})
	minutes := make([]int64, 0, len(c.Mismatches))
	for _, m := range c.Mismatches {
		minutes = append(minutes, m.Minute.Unix())
	}
	c.AffectedMinutes = minuteRanges(minutes)
}

// minuteRanges merges minutes (Unix s) into the fewest [from, to) ranges of
// consecutive minutes.
func minuteRanges(minutes []int64) []MinuteRange {
	out := []MinuteRange{}
	slices.Sort(minutes)
	minutes = slices.Compact(minutes)
	for i := 0; i < len(minutes); {
		j := i
		for j+1 < len(minutes) && minutes[j+1] == minutes[j]+60 {
			j++
		}
		out = append(out, MinuteRange{From: time.Unix(minutes[i], 0).UTC(), To: time.Unix(minutes[j]+60, 0).UTC()})
		i = j + 1
	}
	return out
}

// repairRanges are the ranges the repair replays: the affected ones, with
// two merged when fewer than maxWindow − 1 minutes lie between them. Each
// replay rewrites the top lists up to maxWindow − 1 minutes after its range
// and reads as far on both sides, so ranges that close would rewrite the
// same lists and read the same clicks twice; the minutes between them are
// replayed too (they are in the reconciled range, and a replay of a correct
// minute rewrites the value it has).
func repairRanges(affected []MinuteRange, maxWindow int) []MinuteRange {
	out := []MinuteRange{}
	reach := time.Duration(maxWindow-1) * time.Minute
	for _, r := range affected {
		if n := len(out); n > 0 && r.From.Before(out[n-1].To.Add(reach)) {
			out[n-1].To = r.To
			continue
		}
		out = append(out, r)
	}
	return out
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSummary writes a human-readable summary: totals, the verdict and the
// largest differences (at most top of them).
func (r *Report) WriteSummary(w io.Writer, top int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "reconciliation of [%s, %s): %d raw clicks recounted\n",
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.ClicksRead)
	writeCheck(bw, "", r.Check, top)
	if r.Repair != nil {
		fmt.Fprintf(bw, "repair: replayed %d range(s):", len(r.Repair.Ranges))
		for _, m := range r.Repair.Ranges {
			fmt.Fprintf(bw, " [%s, %s)", m.From.Format(time.RFC3339), m.To.Format(time.RFC3339))
		}
		fmt.Fprintln(bw)
		writeCheck(bw, "after repair: ", r.Repair.After, top)
	}
	verdict := "OK: within"
	if r.ExceedsThreshold {
		verdict = "FAIL: exceeds"
	}
	fmt.Fprintf(bw, "%s the threshold of %s\n", verdict, percent(r.Threshold))
	return bw.Flush()
}

func writeCheck(w io.Writer, prefix string, c Check, top int) {
	for _, x := range []struct {
		name string
		t    Totals
	}{{"counts", c.Counts}, {"filtered counts", c.Filtered}} {
		fmt.Fprintf(w, "%s%-15s recounted %d, stored %d, difference %+d; %d of %d keys differ (|diff| %d, %s)\n",
			prefix, x.name, x.t.Recounted, x.t.Stored, x.t.Difference, x.t.Mismatched, x.t.Keys, x.t.AbsDifference, percent(x.t.RelativeDifference))
		if x.t.DigestMismatched > 0 || x.t.DigestUnknown > 0 {
			fmt.Fprintf(w, "%s%-15s %d keys: equal counts of different clicks (digests differ); %d stored keys without a digest (compared by count only)\n",
				prefix, "", x.t.DigestMismatched, x.t.DigestUnknown)
		}
	}
	if len(c.Mismatches) == 0 {
		return
	}
	n := min(top, len(c.Mismatches))
	fmt.Fprintf(w, "%slargest differences (%d of %d):\n", prefix, n, len(c.Mismatches))
	for _, m := range c.Mismatches[:n] {
		f := m.FilterID
		if f == "" {
			f = "(all)"
		}
		why := ""
		if m.DigestMismatch {
			why = "  digest differs: different clicks"
		}
		fmt.Fprintf(w, "  %s  %-24s %-20s recounted %8d  stored %8d  diff %+d%s\n",
			m.Minute.Format(time.RFC3339), m.AdID, f, m.Recounted, m.Stored, m.Difference, why)
	}
}

func percent(f float64) string { return fmt.Sprintf("%.4g%%", 100*f) }

// Metrics returns a registry with the report's figures as gauges, for a
// Prometheus textfile collector (prometheus.WriteToTextfile) or a push.
func (r *Report) Metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g := func(name, help string, labels []string, set func(*prometheus.GaugeVec)) {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "adclick", Subsystem: "reconcile", Name: name, Help: help}, labels)
		reg.MustRegister(v)
		set(v)
	}
	final := r.Check
	if r.Repair != nil {
		final = r.Repair.After
	}
	kinds := func(c Check, f func(Totals) float64) func(*prometheus.GaugeVec) {
		return func(v *prometheus.GaugeVec) {
			v.WithLabelValues("count").Set(f(c.Counts))
			v.WithLabelValues("filtered").Set(f(c.Filtered))
		}
	}
	g("last_run_timestamp_seconds", "When the last reconciliation started.", nil, func(v *prometheus.GaugeVec) {
		v.WithLabelValues().Set(float64(r.StartedAt.UnixNano()) / 1e9)
	})
	g("range_start_timestamp_seconds", "Start of the reconciled range.", nil, func(v *prometheus.GaugeVec) { v.WithLabelValues().Set(float64(r.From.Unix())) })
	g("range_end_timestamp_seconds", "End (exclusive) of the reconciled range.", nil, func(v *prometheus.GaugeVec) { v.WithLabelValues().Set(float64(r.To.Unix())) })
	g("clicks_read", "Raw clicks the recount read.", nil, func(v *prometheus.GaugeVec) { v.WithLabelValues().Set(float64(r.ClicksRead)) })
	g("recounted", "Sum of recounted values, by key kind.", []string{"kind"}, kinds(r.Check, func(t Totals) float64 { return float64(t.Recounted) }))
	g("stored", "Sum of stored values as found, by key kind.", []string{"kind"}, kinds(r.Check, func(t Totals) float64 { return float64(t.Stored) }))
	g("mismatched_keys", "Keys whose stored value differed from the recount, as found.", []string{"kind"}, kinds(r.Check, func(t Totals) float64 { return float64(t.Mismatched) }))
	g("digest_mismatched_keys", "Keys with equal counts but different digests (different clicks), as found.", []string{"kind"},
		kinds(r.Check, func(t Totals) float64 { return float64(t.DigestMismatched) }))
	g("abs_difference", "Sum of |recounted - stored| as found.", []string{"kind"}, kinds(r.Check, func(t Totals) float64 { return float64(t.AbsDifference) }))
	g("relative_difference", "Relative difference as found (abs difference / recounted).", []string{"kind"}, kinds(r.Check, func(t Totals) float64 { return t.RelativeDifference }))
	g("mismatched_keys_final", "Keys still differing after the run (after repair when one ran).", []string{"kind"}, kinds(final, func(t Totals) float64 { return float64(t.Mismatched) }))
	g("repaired_ranges", "Minute ranges replayed by the repair.", nil, func(v *prometheus.GaugeVec) {
		n := 0
		if r.Repair != nil {
			n = len(r.Repair.Ranges)
		}
		v.WithLabelValues().Set(float64(n))
	})
	g("exceeds_threshold", "1 when the final relative difference exceeds the threshold.", nil, func(v *prometheus.GaugeVec) {
		b := 0.0
		if r.ExceedsThreshold {
			b = 1
		}
		v.WithLabelValues().Set(b)
	})
	g("duration_seconds", "How long the run took.", nil, func(v *prometheus.GaugeVec) { v.WithLabelValues().Set(r.Duration.Seconds()) })
	return reg
}
